"""vpsfleet.role_docs: the README variables block and defaults/main.yml follow meta/argument_specs.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpsfleet import role_docs

ROOT = Path(__file__).resolve().parents[2]

SPECS = """\
argument_specs:
  main:
    short_description: A small role
    options:
      demo_name:
        type: str
        required: true
        description: The name.
      demo_mode:
        type: str
        choices: [fast, safe]
        default: safe
        description:
          - How it runs;
          - two paragraphs | one pipe.
      demo_time:
        type: str
        default: "04:00"
        description: HH:MM, <quoted> on purpose.
      demo_hosts:
        type: list
        elements: dict
        default: "{{ vpsfleet_hosts | default([]) }}"
        description: The hosts.
        options:
          address:
            type: str
            required: true
            description: An IPv4.
          names:
            type: list
            elements: str
            default: []
            description: Its names.
      demo_limits:
        type: dict
        default: {start: "00:00", end: "03:00"}
        options:
          start:
            type: str
            description: Start.
  extra:
    short_description: Another entry point
    options:
      demo_only_here:
        type: bool
        default: false
        description: Only for tasks_from extra.
"""

DEFAULTS = """\
demo_mode: safe
demo_time: "04:00"
demo_hosts: "{{ vpsfleet_hosts | default([]) }}"
demo_limits: {start: "00:00", end: "03:00"}
demo_only_here: false
"""

README = f"""\
# Role `demo`

Prose before.

## Variables

Prose kept.

{role_docs.BEGIN}
stale
{role_docs.END}

## Tests

Prose after.
"""


def make_role(tmp_path: Path, specs: str = SPECS, defaults: str = DEFAULTS, readme: str = README) -> Path:
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(specs)
    (role / "defaults" / "main.yml").write_text(defaults)
    (role / "README.md").write_text(readme)
    return role


def test_render_lists_every_entry_point_and_nested_option(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    block = role_docs.render(role_docs.load_specs(role))
    assert block.startswith(role_docs.BEGIN) and block.endswith(role_docs.END)
    lines = block.splitlines()
    assert "### Entry point `main`" in lines and "### Entry point `extra`" in lines
    assert lines.index("### Entry point `main`") < lines.index("### Entry point `extra`")
    assert "| `demo_name` | str | yes |  |  | The name. |" in lines
    # choices, a description in paragraphs, a pipe escaped in text
    assert (
        "| `demo_mode` | str | no | `safe` | `fast`, `safe` | How it runs; two paragraphs \\| one pipe. |"
        in lines
    )
    # a string YAML would read otherwise is quoted; '<' cannot open HTML
    assert '| `demo_time` | str | no | `"04:00"` |  | HH:MM, \\<quoted> on purpose. |' in lines
    # Jinja as written, its pipe escaped inside the code span
    assert (
        "| `demo_hosts` | list of dict | no | `{{ vpsfleet_hosts \\| default([]) }}` |  | The hosts. |"
        in lines
    )
    # nested options, flattened under their parent, in order
    names = [line.split(" | ")[0] for line in lines if line.startswith("| `")]
    assert names[:7] == [
        "| `demo_name`",
        "| `demo_mode`",
        "| `demo_time`",
        "| `demo_hosts`",
        "| `demo_hosts.address`",
        "| `demo_hosts.names`",
        "| `demo_limits`",
    ]
    assert "| `demo_hosts.address` | str | yes |  |  | An IPv4. |" in lines
    assert "| `demo_hosts.names` | list of str | no | `[]` |  | Its names. |" in lines
    assert any(
        line.startswith("| `demo_limits` | dict | no | `{start: '00:00', end: '03:00'}`") for line in lines
    )
    assert "| `demo_limits.start` | str | no |  |  | Start. |" in lines
    assert "| `demo_only_here` | bool | no | `false` |  | Only for tasks_from extra. |" in lines


def test_write_replaces_only_the_block_and_check_then_passes(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    roles_dir = role.parent
    assert role_docs.check(roles_dir) == [
        "demo/README.md: stale argument_specs block (python -m vpsfleet.role_docs write)"
    ]
    assert role_docs.write(roles_dir) == [role / "README.md"]
    text = (role / "README.md").read_text()
    assert text.startswith(
        "# Role `demo`\n\nProse before.\n\n## Variables\n\nProse kept.\n\n" + role_docs.BEGIN
    )
    assert text.endswith(role_docs.END + "\n\n## Tests\n\nProse after.\n")
    assert "stale" not in text
    assert role_docs.check(roles_dir) == []
    assert role_docs.write(roles_dir) == []  # a second write changes nothing
    assert role_docs.main(["check", "--roles", str(roles_dir)]) == 0


def test_a_changed_spec_makes_the_block_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    role = make_role(tmp_path)
    role_docs.write(role.parent)
    specs = role / "meta" / "argument_specs.yml"
    specs.write_text(specs.read_text().replace("description: The name.", "description: The new name."))
    assert role_docs.main(["check", "--roles", str(role.parent)]) == 1
    assert "demo/README.md: stale argument_specs block" in capsys.readouterr().out


def test_a_readme_without_markers_is_reported(tmp_path: Path) -> None:
    role = make_role(tmp_path, readme="# Role `demo`\n\n| variable | default |\n")
    problems = role_docs.check(role.parent)
    assert len(problems) == 1 and problems[0].startswith("demo/README.md: no single pair of markers")
    with pytest.raises(role_docs.SpecError, match=r"README\.md"):
        role_docs.write(role.parent)


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        # a different value
        (
            DEFAULTS.replace("demo_mode: safe", "demo_mode: fast"),
            "demo_mode (entry point main): the specs give default safe, defaults/main.yml gives fast",
        ),
        # the same text, another type: YAML 1.1 reads 5:30 as the integer 330
        (
            DEFAULTS.replace('demo_time: "04:00"', "demo_time: 5:30"),
            'demo_time (entry point main): the specs give default "04:00", defaults/main.yml gives 330',
        ),
        # a Jinja default compares as a string
        (
            DEFAULTS.replace("default([])", "default(['x'])"),
            "demo_hosts (entry point main): the specs give default {{ vpsfleet_hosts | default([]) }}, "
            "defaults/main.yml gives {{ vpsfleet_hosts | default(['x']) }}",
        ),
        # in the specs only
        (
            DEFAULTS.replace("demo_only_here: false\n", ""),
            "demo_only_here (entry point extra): the specs give default false, defaults/main.yml, "
            "defaults/extra.yml and tasks/extra.yml have none",
        ),
        # in defaults/main.yml only: declared without a default, required, or not declared at all
        (
            DEFAULTS + "demo_name: x\n",
            "demo_name (entry point main): required in the specs, yet defaults/main.yml gives a default",
        ),
        (
            DEFAULTS + "demo_unknown: 1\n",
            "demo_unknown: in defaults/main.yml but in no entry point of the specs",
        ),
        # a dict with other values; a boolean is not an integer
        (DEFAULTS.replace('end: "03:00"', 'end: "02:00"'), "demo_limits (entry point main)"),
        (
            DEFAULTS.replace("demo_only_here: false", "demo_only_here: 0"),
            "demo_only_here (entry point extra): the specs give default false, defaults/main.yml gives 0",
        ),
    ],
)
def test_defaults_that_disagree_with_the_specs_fail(tmp_path: Path, defaults: str, expected: str) -> None:
    role = make_role(tmp_path, defaults=defaults)
    role_docs.write(role.parent)
    problems = role_docs.check(role.parent)
    assert len(problems) == 1, problems
    assert problems[0].startswith("demo: " + expected), problems


def test_jinja_that_differs_in_spacing_only_is_shown_verbatim(tmp_path: Path) -> None:
    role = make_role(tmp_path, defaults=DEFAULTS.replace("default([]) }}", "default([])  }}"))
    role_docs.write(role.parent)
    assert role_docs.check(role.parent) == [
        'demo: demo_hosts (entry point main): the specs give default "{{ vpsfleet_hosts | default([]) }}", '
        'defaults/main.yml gives "{{ vpsfleet_hosts | default([])  }}"'
    ]


def test_an_entry_point_may_keep_its_defaults_in_its_tasks_block(tmp_path: Path) -> None:
    role = make_role(tmp_path, defaults=DEFAULTS.replace("demo_only_here: false\n", ""))
    role_docs.write(role.parent)
    (role / "tasks").mkdir()
    tasks = role / "tasks" / "extra.yml"
    tasks.write_text(
        "- name: Extra\n"
        "  vars:\n"
        "    demo_only_here: false\n"
        "    demo_internal: 1  # not an input: not in the specs, not reported\n"
        "  block:\n"
        "    - name: Say\n"
        "      ansible.builtin.debug:\n"
        "        msg: hello\n"
    )
    assert role_docs.check(role.parent) == []
    tasks.write_text(tasks.read_text().replace("demo_only_here: false", "demo_only_here: true"))
    assert role_docs.check(role.parent) == [
        "demo: demo_only_here (entry point extra): the specs give default false, tasks/extra.yml gives true"
    ]


def test_a_spec_without_default_for_a_defaulted_variable_fails(tmp_path: Path) -> None:
    specs = SPECS.replace('        default: "04:00"\n', "")
    role = make_role(tmp_path, specs=specs)
    role_docs.write(role.parent)
    assert role_docs.check(role.parent) == [
        'demo: demo_time (entry point main): defaults/main.yml gives "04:00", the specs give no default'
    ]


def test_same_value_is_strict_about_types() -> None:
    assert role_docs.same_value({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not role_docs.same_value(True, 1)
    assert not role_docs.same_value(1, 1.0)
    assert not role_docs.same_value("{{ x }}", "{{x}}")
    assert not role_docs.same_value([1, 2], [1, 2, 3])


def test_the_repository_roles_agree_with_their_specs() -> None:
    """Every README block is the one `python -m vpsfleet.role_docs write` gives, and every role's
    defaults/main.yml gives the defaults its argument_specs.yml states."""
    problems = role_docs.check(ROOT / "ansible" / "roles")
    assert problems == [], "\n".join(problems)


def test_every_role_has_its_block() -> None:
    roles = role_docs.roles(ROOT / "ansible" / "roles")
    assert len(roles) >= 7
    for role in roles:
        text = (role / "README.md").read_text()
        assert text.count(role_docs.BEGIN) == 1 and text.count(role_docs.END) == 1, role.name
