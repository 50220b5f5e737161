"""The registry of architectures (irn.zoo.registry): every official file is claimed by exactly one
entry, every module is owned by exactly one, our files name their architecture ("arch") and the files
written before that field still load as they did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import REPO, random_irn, shared_path

import irn
from irn.nn.fast import optimize_for_inference
from irn.nn.restoration import CompressionRestorer, RestorerConfig
from irn.nn.sain import SAIN, SAINConfig
from irn.nn.tirn import TIRN, TIRNConfig
from irn.zoo import registry
from irn.zoo.architecture import Architecture, strip_prefix
from irn.zoo.catalogue import CATALOGUE
from irn.zoo.checkpoint import FORMAT_VERSION
from irn.zoo.errors import CheckpointError

#: the official fixtures under ../shared/fixtures and the one entry that must claim each
FIXTURES = {
    "official_irn_x2_seed7.pth": "irn",
    "official_irn_x3_seed5.pth": "conv",
    "official_irn_color_seed3.pth": "color",
    "official_crm_x2_seed2.pth": "crm",
    "official_sain_x2_seed3.pth": "sain",
    "official_tirn_x2_seed3.pth": "tirn",
    "official_tirn_x4_seed3.pth": "tirn",
}
#: architectures the catalogue names that are not registered yet (issue 30, part 1: SAIN and T-IRN);
#: empty once their modules are in irn/zoo/archs/
PENDING: set[str] = set()


def tiny_crm() -> CompressionRestorer:
    return CompressionRestorer(RestorerConfig(features=8, blocks=1, growth=4))


def tiny_modules() -> dict[str, tuple[torch.nn.Module, str]]:
    """A small module of every registered architecture (and the fast path of the IRN family) -> its entry."""
    return {
        "haar x2": (random_irn(2, 1, growth=8), "irn"),
        "haar x4": (random_irn(4, 1, growth=8), "irn"),
        "haar x8": (random_irn(8, 1, growth=8), "irn"),
        "conv x3": (random_irn(3, 1, growth=8, kind="conv"), "conv"),
        "conv x2": (random_irn(2, 1, growth=8, kind="conv"), "conv"),
        "color": (random_irn(1, 1, growth=8, kind="color"), "color"),
        "crm": (tiny_crm(), "crm"),
        "sain x2": (SAIN(SAINConfig(scale=2, e_blocks=1, v_blocks=1, growth=8)), "sain"),
        "sain x4": (SAIN(SAINConfig(scale=4, e_blocks=1, v_blocks=1, growth=8)), "sain"),
        "tirn x2": (TIRN(TIRNConfig(scale=2, blocks_per_stage=(1,), growth=8)), "tirn"),
        "tirn x4": (TIRN(TIRNConfig(scale=4, blocks_per_stage=(1, 1), growth=8)), "tirn"),
    }


def claimed_by(state: dict[str, object]) -> list[str]:
    return [a.name for a in registry.claimants(strip_prefix(state))]


# ---------------------------------------------------------------------------- the entries
def test_every_entry_declares_what_the_loader_and_irn_models_read() -> None:
    names = [a.name for a in registry.ARCHITECTURES]
    assert len(names) == len(set(names)) and names[:4] == ["irn", "conv", "color", "crm"]
    for a in registry.ARCHITECTURES:
        assert isinstance(a, Architecture)
        assert a.name.isidentifier() and a.name == a.name.lower(), a.name
        assert a.title and a.keys and a.channels and a.origin and a.licence, a.name
        assert a.role in ("rescaler", "restorer") and a.latent in ("sample", "zero", "none"), a.name
        assert callable(a.config_class.from_dict), a.name
    assert registry.get_architecture("crm").role == "restorer"


def test_the_catalogue_names_registered_architectures() -> None:
    """Every model name's architecture is in the registry (PENDING: the ones issue 30 part 1 adds)."""
    known = set(registry.names())
    unknown = {e.arch for e in CATALOGUE} - known
    assert unknown <= PENDING, f"catalogue architectures missing from the registry: {sorted(unknown - PENDING)}"
    assert not (PENDING & known), f"registered now, remove from PENDING: {sorted(PENDING & known)}"
    for entry in CATALOGUE:
        if entry.arch in known and registry.get_architecture(entry.arch).role == "rescaler":
            assert entry.latent in ("sample", "zero"), entry.name


# ---------------------------------------------------------------------------- official files: claimed once
@pytest.mark.parametrize("name", list(FIXTURES))
def test_each_official_fixture_is_claimed_by_exactly_one_entry(name: str) -> None:
    state = torch.load(shared_path("fixtures", name), weights_only=True)
    assert claimed_by(state) == [FIXTURES[name]]
    assert claimed_by({"module." + k: v for k, v in state.items()}) == [FIXTURES[name]]  # DataParallel


def test_no_official_fixture_is_claimed_twice() -> None:
    """Every ``official_*.pth`` in ../shared/fixtures (SAIN and T-IRN ones too): one claimant at most, and
    exactly one for those whose architecture is registered (a new entry's own test names its fixture)."""
    folder = shared_path("fixtures")
    files = sorted(folder.glob("official_*.pth"))
    assert files, f"no official fixtures in {folder}"
    for path in files:
        found = claimed_by(torch.load(path, weights_only=True))
        assert len(found) <= 1, f"{path.name} is claimed by {found}"


@pytest.mark.parametrize("case", list(tiny_modules()))
def test_each_generated_state_dict_is_claimed_by_its_entry_and_loads(case: str, tmp_path: Path) -> None:
    module, expected = tiny_modules()[case]
    assert claimed_by(module.state_dict()) == [expected]
    path = tmp_path / "official.pth"
    torch.save(module.state_dict(), path)  # what the official code saves
    loaded = irn.load(path)
    assert registry.architecture_of(loaded).name == expected
    assert loaded.metadata["source"] == "official"


def test_a_state_dict_no_entry_claims_names_the_known_keys(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError) as exc:
        irn.load(path)
    message = str(exc.value)
    assert "\n" not in message and str(path) in message and "not an IRN checkpoint" in message
    for a in registry.ARCHITECTURES:
        assert f"{a.name}: {a.keys}" in message


def test_two_entries_claiming_one_state_dict_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    irn_entry = registry.get_architecture("irn")
    twin = Architecture(**{**irn_entry.__dict__, "name": "twin"})
    monkeypatch.setattr(registry, "ARCHITECTURES", (*registry.ARCHITECTURES, twin))
    with pytest.raises(registry.AmbiguousArchitecture, match="claimed by irn, twin"):
        registry.detect(random_irn(2, 1, growth=8).state_dict(), "x.pth")
    with pytest.raises(registry.AmbiguousArchitecture, match="owned by irn, twin"):
        registry.architecture_of(random_irn(2, 1, growth=8))


def test_reports_name_a_model_by_its_entrys_label(monkeypatch: pytest.MonkeyPatch) -> None:
    """How irn eval's tables and irn decay name a model comes from its registry entry (``label``), so a new
    architecture needs no second list elsewhere (it was a table in irn/eval/report.py: a new entry was
    called "IRN")."""
    from irn.eval.report import method_label
    from irn.experiments.decay import irn_rescaler

    labels = {a.name: a.label for a in registry.ARCHITECTURES if a.role == "rescaler"}
    assert labels == {"irn": "IRN", "conv": "IRN", "color": "IRN", "sain": "SAIN", "tirn": "T-IRN"}
    for name, label in labels.items():
        assert method_label("m.pt", "zero", 1, arch=name) == f"{label} m.pt, z=zero"
    assert method_label("m.pt", "zero", 1) == "IRN m.pt, z=zero"  # a report written before "arch"
    sain = registry.get_architecture("sain")
    monkeypatch.setattr(
        registry,
        "ARCHITECTURES",
        (*registry.ARCHITECTURES, Architecture(**{**sain.__dict__, "name": "newer", "label": "Newer"})),
    )
    monkeypatch.setitem(registry._BY_NAME, "newer", registry.ARCHITECTURES[-1])
    assert method_label(None, "sample", 2, arch="newer") == "Newer, z=sample, 2 draws"
    assert method_label(None, "sample", 1, arch="unknown") == "IRN, z=sample"  # a report from a newer irn
    monkeypatch.setattr(registry, "ARCHITECTURES", registry.ARCHITECTURES[:-1])
    tirn = TIRN(TIRNConfig(scale=2, blocks_per_stage=(1,), growth=8))
    assert irn_rescaler(tirn, "zero").description.startswith("T-IRN x2, z = 0")


# ---------------------------------------------------------------------------- modules: owned once
@pytest.mark.parametrize("case", list(tiny_modules()))
def test_each_module_and_its_fast_path_is_owned_by_exactly_one_entry(case: str) -> None:
    module, expected = tiny_modules()[case]
    assert [a.name for a in registry.ARCHITECTURES if a.owns(module)] == [expected]
    if case.startswith("haar"):
        fast = optimize_for_inference(module)
        assert [a.name for a in registry.ARCHITECTURES if a.owns(fast)] == [expected]


@pytest.mark.parametrize("case", [c for c, (_, arch) in tiny_modules().items() if arch != "crm"])
def test_each_rescaler_says_in_numbers_what_its_sampled_z_is_drawn_from(case: str) -> None:
    """latent_distribution() (read by the ONNX export's model.json and irn decay) describes the draws of
    sample_latent: a network that draws from something else than N(0, 1) must say so, or its ONNX
    export would silently draw N(0, 1)."""
    module, _ = tiny_modules()[case]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # away from the start (SAIN's fresh mixture is about N(0, 1) itself)
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    dist = module.latent_distribution()
    json.dumps(dist)  # plain numbers
    lr = torch.zeros(1, module.lr_channels, 48, 48)
    with torch.no_grad():
        z = module.sample_latent(lr, "sample", seed=0).double()
    if dist["distribution"] == "normal":
        mean, std = 0.0, 1.0
    else:
        assert dist["distribution"] == "gaussian_mixture", dist
        w, m, s = (torch.tensor(dist[k], dtype=torch.float64) for k in ("weights", "means", "stds"))
        mean = float((w * m).sum())
        std = float((w * (s**2 + m**2)).sum() - mean**2) ** 0.5
    assert abs(float(z.mean()) - mean) < 0.05 * max(1.0, std) and abs(float(z.std()) - std) < 0.05 * std


def test_a_module_of_no_architecture_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="none of the architectures irn saves"):
        irn.save(torch.nn.Linear(2, 2), tmp_path / "linear.pt")  # type: ignore[arg-type]
    assert not (tmp_path / "linear.pt").exists()


# ---------------------------------------------------------------------------- our files: the arch field
@pytest.mark.parametrize("case", list(tiny_modules()))
@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_our_files_carry_the_arch_field_and_round_trip(case: str, fmt: str, tmp_path: Path) -> None:
    module, expected = tiny_modules()[case]
    path = irn.save(module, tmp_path / f"m.{fmt}", {"note": case})
    if fmt == "pt":
        assert torch.load(path, weights_only=True)["arch"] == expected
    else:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            assert f.metadata()["arch"] == expected
    loaded = irn.load(path)
    assert registry.architecture_of(loaded).name == expected and loaded.config == module.config
    ours, theirs = loaded.state_dict(), module.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert loaded.metadata["note"] == case


def _old_payload(module: torch.nn.Module) -> dict[str, object]:
    """Exactly what irn.save wrote before the "arch" field (format version 1)."""
    restorer = isinstance(module, CompressionRestorer)
    return {
        "format": "irn",
        "format_version": 1,
        "irn_version": "0.1.0",
        **({"module": "restorer"} if restorer else {}),
        "config": module.config.to_dict(),
        "state_dict": {k: v.clone() for k, v in module.state_dict().items()},
        "metadata": {"note": "old"},
    }


#: the architectures irn saved before our files named theirs ("arch"); SAIN and T-IRN came after
BEFORE_ARCH = [case for case in tiny_modules() if not case.startswith(("sain", "tirn"))]


@pytest.mark.parametrize("case", BEFORE_ARCH)
def test_files_written_before_the_arch_field_load_as_before(case: str, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    module, expected = tiny_modules()[case]
    old = _old_payload(module)
    pt = tmp_path / "old.pt"
    torch.save(old, pt)
    header = {
        "format": "irn",
        "format_version": "1",
        "irn_version": "0.1.0",
        "module": "restorer" if expected == "crm" else "irn",
        "config": json.dumps(old["config"]),
        "metadata": json.dumps(old["metadata"]),
    }
    st = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(st), metadata=header)
    for path in (pt, st):
        loaded = irn.load(path)
        assert registry.architecture_of(loaded).name == expected and loaded.config == module.config
        assert loaded.metadata["note"] == "old"


def test_an_old_file_carrying_its_restorer_still_brings_it_back(tmp_path: Path) -> None:
    model, crm = random_irn(2, 1, growth=8), tiny_crm()
    old = _old_payload(model)
    old["restorer"] = {"config": crm.config.to_dict(), "state_dict": crm.state_dict()}  # no "arch" inside
    torch.save(old, tmp_path / "old.pt")
    carried = irn.zoo.restorer_of(irn.load(tmp_path / "old.pt"))
    assert carried is not None and carried.config == crm.config


def test_new_files_stay_readable_by_an_irn_that_predates_the_arch_field(tmp_path: Path) -> None:
    """The fields an older irn reads are unchanged: same format version, "module": "restorer" for a CRM."""
    payload = torch.load(irn.save(tiny_crm(), tmp_path / "crm.pt"), weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION == 1 and payload["module"] == "restorer"
    payload = torch.load(irn.save(random_irn(2, 1, growth=8), tmp_path / "x2.pt"), weights_only=True)
    assert "module" not in payload and "kind" not in payload["config"]


@pytest.mark.parametrize(
    ("arch", "config_change", "words"),
    [
        ("sain9", None, "architecture 'sain9' is unknown to this irn"),
        ("conv", None, "bad architecture config for 'conv'"),  # a Haar config under the conv entry
        ("crm", None, "bad architecture config"),  # an IRN config is no RestorerConfig
        (7, None, "arch 7 is not a name"),
        ("irn", {"attention": True}, "attention"),
    ],
)
def test_a_damaged_arch_field_is_one_clear_error(
    tmp_path: Path, arch: object, config_change: dict[str, object] | None, words: str
) -> None:
    path = irn.save(random_irn(2, 1, growth=8), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["arch"] = arch
    payload["config"].update(config_change or {})
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as exc:
        irn.load(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value) and words in str(exc.value), str(exc.value)


def test_the_commands_refuse_a_restorer_by_its_role(tmp_path: Path) -> None:
    path = irn.save(tiny_crm(), tmp_path / "crm.pt")
    for loader in (irn.zoo.load_irn, irn.zoo.load_checkpoint):
        with pytest.raises(CheckpointError, match="compression restoration module .*not an IRN model"):
            loader(path)


# ---------------------------------------------------------------------------- docs read the registry
def test_the_docs_explain_how_to_add_an_architecture() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    assert "## Adding an architecture" in text
    for part in ("irn/zoo/archs/", "ARCHITECTURES", "detect", "infer_config", "build", "owns"):
        assert part in text.split("## Adding an architecture", 1)[1], part


def test_no_public_name_of_the_zoo_hides_one_of_its_modules() -> None:
    """``from irn.zoo import X`` gives the same object whether or not module ``irn.zoo.X`` was imported."""
    import irn.zoo as zoo

    modules = {p.stem for p in Path(zoo.__file__).parent.glob("*.py")} | {"archs"}
    assert not modules & set(zoo.__all__), sorted(modules & set(zoo.__all__))
    for name in zoo.__all__:
        assert getattr(zoo, name) is not None


@pytest.mark.parametrize("case", [c for c, (_, arch) in tiny_modules().items() if arch != "crm"])
def test_each_rescaler_decodes_a_file_without_metadata_with_the_latent_its_entry_names(
    case: str, tmp_path: Path
) -> None:
    """An official file (a plain state dict, no metadata) decodes with --z auto as its registry entry says
    (irn models shows it): IRN-Color with z = 0 as the official code, T-IRN z = 0, the others sampled."""
    module, arch = tiny_modules()[case]
    entry = registry.get_architecture(arch)
    assert module.recommended_z() == entry.latent, case
    path = tmp_path / "official.pth"
    torch.save(module.state_dict(), path)
    loaded = irn.load(path, device="cpu")
    assert loaded.recommended_z() == entry.latent, case
    if arch == "color":
        assert entry.latent == "zero"
