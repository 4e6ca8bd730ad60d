"""Entry points. Only these modules see Hydra's DictConfig; they build plain objects and call
the typed core (``mge.data``, ``mge.models``, ``mge.generator``, ``mge.discriminator``, ...)."""
