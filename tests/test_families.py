"""Model family declarations: one home per job, tables read from it, settings checked, no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aigc_lessons import pretrained
from aigc_lessons.family import Option
from aigc_lessons.models import MODEL_CLASSES
from aigc_lessons.recipes import FAMILIES, RECIPES, full_setting
from aigc_lessons.runs import RunConfig
from aigc_lessons.runs.config import prepare
from aigc_lessons.train import CganConfig, GanConfig, VaeConfig
from aigc_lessons.rewards.dpo import DpoConfig
from aigc_lessons.rewards.preferences import PreferenceConfig
from aigc_lessons.rewards.reward_model import RewardModelConfig
from aigc_lessons.rewards.tuning import RewardTuningConfig
from aigc_lessons.train.gpt import GptConfig
from aigc_lessons.trainers import TRAINERS, get_trainer

PACKAGE = Path(__file__).resolve().parent.parent / "aigc_lessons"


def test_every_shipped_weight_has_a_recipe_and_every_recipe_ships_weights():
    assert sorted(RECIPES) == sorted(pretrained.available())


def test_every_card_names_a_class_that_a_family_declares():
    declared = {cls.__name__ for family in FAMILIES.values() for cls in family.classes}
    for name in pretrained.available():
        assert pretrained.card(name)["model"]["class"] in declared, name
    assert declared <= set(MODEL_CLASSES), declared - set(MODEL_CLASSES)


def test_the_full_setting_has_one_home():
    """The command line's defaults, the train configs' defaults and the cards agree with the recipes."""
    assert get_trainer("gan_mlp").defaults(fast=False)["epochs"] == full_setting("gan_mlp_mnist")["epochs"] == 30
    assert get_trainer("dcgan").defaults(fast=False)["epochs"] == full_setting("dcgan_mnist")["epochs"]
    assert get_trainer("vae").defaults(fast=False)["epochs"] == full_setting("vae_mnist")["epochs"]
    assert get_trainer("cgan").defaults(fast=False)["epochs"] == full_setting("cgan_mnist")["epochs"]
    assert GanConfig().epochs == full_setting("gan_mlp_mnist")["epochs"]
    assert VaeConfig().epochs == full_setting("vae_mnist")["epochs"]
    assert CganConfig().epochs == full_setting("cgan_mnist")["epochs"]
    # dcgan_mnist is left out while its new full setting is being trained (its card still says the old one).
    for name in ("gan_mlp_mnist", "vae_mnist", "vae2d_mnist", "cvae_mnist", "cgan_mnist",
                 "cgan_dcgan_mnist", "classifier_mnist", "music_lstm_bach"):
        assert pretrained.card(name)["card"]["training"]["epochs"] == full_setting(name)["epochs"], name
    setting = full_setting("dcgan_mnist")
    setting["epochs"] = 99  # a copy: the caller cannot change the recipe
    assert full_setting("dcgan_mnist")["epochs"] != 99


def test_trainers_are_the_families_with_a_command_line_trainer():
    assert sorted(TRAINERS) == sorted(name for name, family in FAMILIES.items() if family.trainer is not None)
    assert {"gan_mlp", "dcgan", "vae", "cgan"} <= set(TRAINERS)


def _imports(path: Path, module: str) -> set[str]:
    """Every package module that ``path`` imports, at the top or inside a function."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aigc_lessons"))
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if prefix.startswith("aigc_lessons"):
                found.update(f"{prefix}.{a.name}" for a in node.names)
                found.add(prefix)
    return found


def test_the_package_has_no_import_cycle_hidden_or_not():
    """Function-local imports count too: a cycle dodged by importing inside a function is still a cycle."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path, module):
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            parts = name.split(".")
            # importing a.b.c also runs the packages a.b (the root package imports nothing itself)
            targets.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        graph[module] = {t for t in targets if t in modules and t != module and not module.startswith(t + ".")}

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    cyclic = sorted(m for m in graph if reaches(m, m, set()))
    assert not cyclic, f"modules on an import cycle: {cyclic}"


# --------------------------------------------------------------------------- valid ranges (issue 20, item 8)

INVALID = [  # (what is built, the settings, the start of the message)
    ("run", {"model": "vae", "options": {"beta": -1.0}}, "option beta must be a number >= 0"),
    ("run", {"model": "vae", "options": {"beta": "-1"}}, "option beta must be a number >= 0"),
    ("run", {"model": "vae", "options": {"latent_dim": 0}}, "option latent_dim must be a positive integer (>= 1)"),
    ("run", {"model": "dcgan", "options": {"channels": 0}}, "option channels must be a positive integer (>= 1)"),
    ("run", {"model": "gan_mlp", "options": {"latent_dim": 2.5}}, "option latent_dim must be a positive integer"),
    ("run", {"model": "gan_mlp", "options": {"precision": "fp16"}}, "option precision must be one of fp32, bf16"),
    ("run", {"model": "gan_mlp", "lr": 0.0}, "lr must be a number > 0 and < 1"),
    ("run", {"model": "gan_mlp", "lr": float("nan")}, "lr must be a number > 0 and < 1"),
    ("run", {"model": "gan_mlp", "epochs": 0}, "epochs must be a positive integer (>= 1)"),
    ("run", {"model": "gan_mlp", "batch_size": 0}, "batch_size must be a positive integer (>= 1)"),
    ("run", {"model": "gan_mlp", "seed": -1}, "seed must be a non-negative integer (>= 0)"),
    ("run", {"model": "gan_mlp", "subset": 0}, "subset must be a positive integer (>= 1) or None"),
    ("run", {"model": "gan_mlp", "checkpoint_every": 0}, "checkpoint_every must be a positive integer"),
    ("run", {"model": "gan_mlp", "log_every": 0}, "log_every must be a positive integer"),
    ("gan", {"epochs": 0}, "epochs must be a positive integer (>= 1)"),
    ("gan", {"lr_generator": -2e-4}, "lr_generator must be a number > 0"),
    ("gan", {"lr_discriminator": 0}, "lr_discriminator must be a number > 0"),
    ("gan", {"batch_size": 0}, "batch_size must be a positive integer"),
    ("gan", {"gp_weight": -1.0}, "gp_weight must be a number >= 0"),
    ("gan", {"discriminator_steps": 0}, "discriminator_steps must be a positive integer"),
    ("gan", {"cpu_seconds": -1}, "cpu_seconds must be a number >= 0 or None"),
    ("gan", {"real_label": 1.5}, "real_label must be in (0, 1]"),
    ("vae", {"beta": -1.0}, "beta must be a number >= 0"),
    ("vae", {"lr": 0.0}, "lr must be a number > 0"),
    ("vae", {"epochs": 0}, "epochs must be a positive integer"),
    ("cgan", {"lr_generator": 0.0}, "lr_generator must be a number > 0"),
    ("cgan", {"batch_size": -3}, "batch_size must be a positive integer"),
    ("gpt", {"steps": 0}, "steps must be a positive integer"),
    ("gpt", {"lr": 0.0}, "lr must be a number > 0"),
    ("gpt", {"beta2": 1.0}, "beta2 must be a number >= 0 and < 1"),
    ("gpt", {"eval_tokens": 0}, "eval_tokens must be a positive integer (>= 1) or None"),
    ("gpt", {"grad_clip": 0}, "grad_clip must be a number > 0"),
    ("gpt", {"precision": "fp16"}, "precision must be"),
    ("gpt", {"steps": 1000, "eval_every": 300}, "steps (1000) must be a multiple of eval_every (300)"),
    ("gpt", {"lr": 1e-4, "min_lr": 1e-3}, "min_lr (0.001) must not exceed lr (0.0001)"),
    ("reward_tuning", {"kl_weight": -1.0}, "kl_weight must be a number >= 0"),
    ("reward_tuning", {"steps": 0}, "steps must be a positive integer (>= 1)"),
    ("reward_tuning", {"learning_rate": 0.0}, "learning_rate must be a number > 0"),
    ("reward_tuning", {"baseline": "average"}, "baseline must be one of none, mean, leave_one_out"),
    ("reward_tuning", {"kl_target": 0.0}, "kl_target must be a number > 0 or None"),
    ("reward_tuning", {"batch_size": 1}, "the leave-one-out baseline needs batch_size >= 2"),
    ("preferences", {"texts": 3}, "texts must be an integer >= 4"),
    ("dpo", {"beta": 0.0}, "beta must be a number > 0"),
    ("reward_model", {"learning_rate": 0.0}, "learning_rate must be a number > 0"),
]


@pytest.mark.parametrize("kind, settings, message", INVALID)
def test_every_setting_out_of_range_is_refused_with_its_range(kind, settings, message):
    build = {"run": lambda s: prepare(RunConfig(**s)), "gan": lambda s: GanConfig(**s),
             "vae": lambda s: VaeConfig(**s), "cgan": lambda s: CganConfig(**s),
             "gpt": lambda s: GptConfig(**s), "reward_tuning": lambda s: RewardTuningConfig(**s),
             "preferences": lambda s: PreferenceConfig(**s), "dpo": lambda s: DpoConfig(**s),
             "reward_model": lambda s: RewardModelConfig(**s)}[kind]
    with pytest.raises(ValueError) as error:
        build(settings)
    assert str(error.value).startswith(message), str(error.value)


def test_valid_edges_are_accepted():
    assert VaeConfig(beta=0.0).beta == 0.0  # beta = 0: no KL term, allowed
    assert GanConfig(cpu_seconds=None, gp_weight=0.0).gp_weight == 0.0
    config, _ = prepare(RunConfig("vae", subset=1, options={"beta": "0", "latent_dim": "1"}))
    assert config.options["beta"] == 0.0 and config.options["latent_dim"] == 1 and config.subset == 1


def test_an_option_says_its_range_in_words():
    assert Option(1, minimum=1).rule() == "a positive integer (>= 1)"
    assert Option(1e-3, above=0, below=1).rule() == "a number > 0 and < 1"
    assert Option("fp32", choices=("fp32", "bf16")).rule() == "one of fp32, bf16"
