"""The built-in rules a site switches on with ``use:``: what most sites never want to leave.

Each is a drop rule with alternative matches (any one suffices), written as configuration
would be, so they are compiled and checked exactly as a site's own rules are.
"""

from __future__ import annotations

#: Every Secondary Capture SOP Class: single-frame, and the four multi-frame ones below it.
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

#: Radiation dose structured reports (RDSR): X-ray, enhanced X-ray, radiopharmaceutical, patient.
DOSE_SR = [
    "XRayRadiationDoseSRStorage",
    "EnhancedXRayRadiationDoseSRStorage",
    "RadiopharmaceuticalRadiationDoseSRStorage",
    "PatientRadiationDoseSRStorage",
]

#: How scanners title the screenshot of their dose page (GE "Dose Report", Philips "Dose Info",
#: Siemens "Patient Protocol", Canon "Dose Summary"); these pages carry the patient's name.
DOSE_SCREEN_DESCRIPTIONS = r"\b(dose (report|info|summary|record|screen)|patient protocol|exposure (report|summary))\b"

#: Built-in name -> its alternative matches, as in config.yaml.
BUILTIN: dict[str, list[dict]] = {
    "drop-screenshots": [
        {"sop_class": {"equals": SECONDARY_CAPTURE}},
        {"sop_class": {"prefix": SECONDARY_CAPTURE + "."}},
    ],
    "drop-dose-reports": [
        {"sop_class": DOSE_SR},
        {"series_description": {"regex": DOSE_SCREEN_DESCRIPTIONS}},
    ],
    "drop-presentation-states": [
        {"sop_class": {"prefix": "1.2.840.10008.5.1.4.1.1.11."}},
        {"modality": "PR"},
    ],
    "drop-key-objects": [
        {"sop_class": ["KeyObjectSelectionDocumentStorage"]},
        {"modality": "KO"},
    ],
}
