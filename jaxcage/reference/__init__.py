"""The CybORG CAGE2 reference: build it (``cyborg_env``) and read its state and draws (``extract``).

Optional: needs the ``cyborg`` extra (``csle-cyborg``, plus ``gym-csle-cyborg`` installed with
``--no-deps``) or the official ``CybORG`` 2.1 package. Importing this package never imports
CybORG; ``make_cyborg_env`` does, and raises ``ReferenceNotInstalled`` (with the install commands)
if it can't.
"""

from jaxcage.reference.cyborg_env import (
    INSTALL_HINT,
    CyborgEnv,
    ReferenceNotInstalled,
    load_backend,
    make_cyborg_env,
    reference_available,
)

__all__ = [
    "INSTALL_HINT",
    "CyborgEnv",
    "ReferenceNotInstalled",
    "load_backend",
    "make_cyborg_env",
    "reference_available",
]
