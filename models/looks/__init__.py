"""The detection passes ("looks") `models.inference.TextFinder` makes over an image, one module each.

A look is a function of the finder (its networks and post-processing) and of what the first pass
saw; it returns raw boxes (x0, y0, x1, y1, score) in original pixels, which `models.regions` turns
into regions. Each module holds the thresholds of its own look. In the order the finder takes them:

    first            the working scale: the detector's map and its components (every image)
    colour           the chroma of a colourful image, and the hue views of its colourful ground
    rotated          the whole image turned a quarter turn (optional; instead of the vertical look)
    vertical         crops around tall first-pass responses, turned and confirmed by the recogniser
    coarse           half the working scale, for text too large for the network's receptive field
    refine           twice the working scale where the first pass saw faint text ("second look")
    second_detector  another detector's map raised into the first pass's, added after the looks
    unread           sets aside what neither the verifier nor the recogniser takes for text
    drawn            sets aside dotted lattices, traces and lone stroke figures neither reads

`tiling` runs a network over an image of any size; `verdict` lets the region verifier decide
whether the regions found show that an image holds text at all. How each look came to be, and
the version (`models.inference.LOOKS_VERSION`) each change made, is told in
models/weights/HISTORY.md, "The looks, version by version".
"""
