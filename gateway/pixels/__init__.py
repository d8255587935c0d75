"""Pixel de-identification: burned-in text found, removed, verified — or the instance held back.

One concept per module:
- ``decode``   PixelData → frames (every accepted syntax and photometric), or Quarantine;
- ``render``   the display rendering the detector sees (models.render), scaled to its input;
- ``finders``  where text finders come from (shipped model, rapidocr) and device choice;
- ``detect``   running the finder over distinct frames (static overlays once, changes per frame),
               and over several instances at once;
- ``ahead``    what ``PixelStage.prepare`` does for several instances at once, and hands back;
- ``known``    known-region rules (device layouts) kept as data in the configuration;
- ``policy``   which detected text is redacted (all, or all but configured safe classes);
- ``mask``     boxes → dilated pixel mask;
- ``inpaint``  restoration backends, one per module: ``telea``, ``fill``, ``sd2``;
- ``verify``   detection again on the restored image; failures are solid-filled (a few rounds at
               most) or the instance is quarantined;
- ``encode``   writing changed frames back losslessly with a consistent header;
- ``stage``    the PixelStage that ties them together.
"""
