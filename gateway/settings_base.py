"""The base every configuration section derives from.

Unknown keys are errors, not silently ignored: a misspelt setting in a de-identification
gateway could quietly switch a safeguard off.
"""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
