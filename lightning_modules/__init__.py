"""lightning_modules: the paradigms' LightningModules, the launcher and the artifact store."""

from lightning_modules.config_resolvers import register as _register_resolvers

_register_resolvers()
