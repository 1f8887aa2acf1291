"""Every model of the suite, registered: import this package, then look models up by name.

  from estimators.models import get_model, names
  spec = get_model("sagan")        # an estimators.model_registry.ModelSpec

Each model is one module here that defines its ModelSpec and registers it when imported (see
README "Adding a model"). The registry itself (estimators.model_registry) imports no model, so
importing goes one way: this package -> the model modules -> the registry.
"""
from estimators.model_registry import get_model, names, register  # noqa: F401
from estimators.models import ladagan  # noqa: F401  (registers ladagan)
from estimators.models import sagan  # noqa: F401  (registers sagan, ylg_sagan)
from estimators.models import attngan  # noqa: F401  (registers attngan)

__all__ = ["get_model", "names", "register"]
