"""The package's form: 3.9 syntax in every file, the version rule."""

import ast
import os
import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent
PY = HERE.parent  # clients/python
CLIENTS = PY.parent
sys.path.insert(0, str(CLIENTS))
sys.path.insert(0, str(PY / "src"))

import version  # noqa: E402  clients/version.py


class PackageTest(unittest.TestCase):
    def test_python39_syntax(self):
        files = sorted(PY.rglob("*.py")) + [CLIENTS / "version.py"]
        self.assertGreater(len(files), 5)
        for f in files:
            with self.subTest(file=str(f.relative_to(CLIENTS))):
                ast.parse(f.read_text(), filename=str(f), feature_version=(3, 9))

    def test_versions(self):
        for tag, want in [
            ("v1.2.3", ("1.2.3", "1.2.3")),
            ("v0.10.0", ("0.10.0", "0.10.0")),
            ("v2.0.0-rc.1", ("2.0.0rc1", "2.0.0-rc.1")),
            ("v2.0.0-beta.3", ("2.0.0b3", "2.0.0-beta.3")),
            (None, ("0.0.0.dev0", "0.0.0-SNAPSHOT")),
            ("", ("0.0.0.dev0", "0.0.0-SNAPSHOT")),
            ("release-1", ("0.0.0.dev0", "0.0.0-SNAPSHOT")),
            ("v1.2", ("0.0.0.dev0", "0.0.0-SNAPSHOT")),
        ]:
            self.assertEqual(version.versions(tag), want, tag)

    def test_committed_versions_are_dev(self):
        # Release jobs stamp the version; the tree carries the dev one.
        import shardseq

        self.assertEqual(shardseq.__version__, version.DEV[0])
        pom = (CLIENTS / "java" / "pom.xml")
        if pom.exists():
            self.assertIn("<version>" + version.DEV[1] + "</version>", pom.read_text())

    def test_pyproject(self):
        text = (PY / "pyproject.toml").read_text()
        for want in ('name = "shardseq"', 'requires-python = ">=3.9"', 'dependencies = []', "LICENSE",
                     'attr = "shardseq._version.__version__"'):
            self.assertIn(want, text)
        self.assertTrue((PY / "LICENSE").exists())
        self.assertEqual((PY / "LICENSE").read_text(), (CLIENTS.parent / "LICENSE").read_text())


if __name__ == "__main__":
    unittest.main()
