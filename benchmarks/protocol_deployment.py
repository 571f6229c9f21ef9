"""The deployment the evaluation protocol runs for a field camera (issue 22).

The shipped deployment describes sharp cameras and the class tables fitted to them. A field
sector describes its cameras' optics and names the class tables fitted to them: with every
perturbation at its field default the towers' pictures are blurred (sigma 0.8 px), so the
field's deployment says ``[detection] psf_sigma_px = 0.8`` (the class guess measures a blob
as blurred) and ``[classes] calibration = "vigil:sim_towers_field.toml"`` (tables fitted on
the calibration seeds 0, 1, 2, 5, 7 and 11 with that detector, never on evaluation seeds).
"""

from __future__ import annotations

from vigil.config import Deployment, default_deployment_path, parse

#: The field camera's optics, pixels (the simulator's field default blur).
FIELD_PSF_SIGMA_PX = 0.8
#: The class tables fitted with the blurred detector (``vigil calibrate classes``).
FIELD_CALIBRATION = "vigil:sim_towers_field.toml"


def field_camera_deployment() -> Deployment:
    """The shipped deployment with the field camera's blur and its class tables: its own
    text with the two keys changed, read by the same parser (so every check still runs)."""
    path = default_deployment_path()
    text = path.read_text(encoding="utf-8")
    shipped = 'calibration = "vigil:sim_towers.toml"'
    if text.count(shipped) != 1 or text.count("\n[detection]\n") != 1:
        raise ValueError(f"{path}: expected one {shipped!r} and one [detection] table")
    text = text.replace(shipped, f'calibration = "{FIELD_CALIBRATION}"')
    text = text.replace("\n[detection]\n", f"\n[detection]\npsf_sigma_px = {FIELD_PSF_SIGMA_PX}\n")
    return parse(text, path)
