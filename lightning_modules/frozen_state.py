"""Frozen networks in checkpoints: referenced by source and content hash, never stored.

A checkpoint holds the trainable state only (generator, its EMA, critic, objective heads, optimisers).
The frozen networks (`ForcingModule.frozen_networks()`: text encoder, codec, teacher / real score /
reference policy) are rebuilt from their configured source in `configure_model`, so their weights are
left out of the module's `state_dict` (which is what every strategy saves: Lightning's single-device
`state_dict()` and FSDP2's `get_model_state_dict`, file or DCP shards) and may be missing when one is
loaded strictly. The checkpoint records instead, under `frozen_networks`, each one's source and the
sha256 of its weights as built (`forcing.provenance`), and a resume refuses, in one line, frozen
weights that changed since.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from torch import nn

from forcing.errors import ConfigError
from forcing.provenance import is_random_init, weights_sha256, weights_source

#: the checkpoint key holding {network name: FrozenRecord}
CHECKPOINT_KEY = "frozen_networks"


class FrozenRecord(TypedDict):
    """What a checkpoint records of one frozen network."""

    source: str
    sha256: str


def frozen_prefixes(module: nn.Module) -> dict[str, nn.Module]:
    """{attribute path: network} of every frozen network of `module` (each of its names when it is
    reachable under several); empty before the networks are built."""
    frozen = {id(net) for net in getattr(module, "frozen_networks", list)()}
    return {name: sub for name, sub in module.named_modules(remove_duplicate=False) if name and id(sub) in frozen}


def record_frozen(module: nn.Module) -> dict[str, FrozenRecord]:
    """{name: source and sha256} of every frozen network (each under its first name); call before sharding."""
    records: dict[str, FrozenRecord] = {}
    seen: set[int] = set()
    for name, net in frozen_prefixes(module).items():
        if id(net) not in seen:
            seen.add(id(net))
            records[name] = FrozenRecord(source=weights_source(net), sha256=weights_sha256(net))
    return records


def check_frozen(
    recorded: Mapping[str, Mapping[str, str]] | None,
    current: Mapping[str, FrozenRecord],
    checkpoint: Any,
    rebuilt_only: bool = False,
) -> None:
    """Raise `ConfigError` (one line, naming the network and its source) when a frozen network of this
    run differs from the one `checkpoint` was trained with, or was not recorded by it.

    `recorded` None: a checkpoint from before frozen networks were left out (it holds their weights).
    `rebuilt_only`: check only networks built from a source (random-init placeholders are skipped).
    """
    if recorded is None:
        return
    for name, now in current.items():
        if rebuilt_only and is_random_init(now["source"]):
            continue
        then = recorded.get(name)
        if then is None:
            raise ConfigError(
                f"frozen network {name} ({now['source']}) is not recorded in checkpoint {checkpoint}: "
                f"it was trained without it (recorded: {', '.join(sorted(recorded)) or 'none'})"
            )
        if then["sha256"] != now["sha256"]:
            raise ConfigError(
                f"frozen network {name} from {now['source']} has changed since checkpoint {checkpoint} "
                f"(sha256 {now['sha256'][:12]}, recorded {then['sha256'][:12]} from {then['source']}): "
                f"restore those weights or start a new run"
            )


def drop_frozen_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """State-dict post hook: remove the frozen networks' entries (they are rebuilt from their source)."""
    starts = tuple(f"{prefix}{name}." for name in frozen_prefixes(module))
    if starts:
        for key in [k for k in state_dict if k.startswith(starts)]:
            del state_dict[key]


def allow_missing_frozen(module: nn.Module, incompatible: Any) -> None:
    """Load-state-dict post hook: a strict load accepts missing frozen-network keys (and only those)."""
    starts = tuple(f"{name}." for name in frozen_prefixes(module))
    if starts:
        incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(starts)]


def leave_frozen_out(module: nn.Module) -> None:
    """Register both hooks on `module` (the LightningModule, the root of every state dict it saves)."""
    module.register_state_dict_post_hook(drop_frozen_keys)
    module.register_load_state_dict_post_hook(allow_missing_frozen)
