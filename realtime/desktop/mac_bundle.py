"""macOS: ``swapcam.app``, whose executable is a program, not a script.

LaunchServices refuses an unsigned bundle whose executable is a shell script (error
-10669), and a script that starts ``swapcam-gui`` hands the process to the framework's
``Python.app``: macOS then reads *its* Info.plist (no camera sentence; "Python" in the
menu bar) and asks for the camera on its behalf. So the executable is a small C launcher,
compiled here with the system's ``cc`` when the command-line tools are installed, that
loads this environment's ``libpython`` into its own process and runs ``main.gui_main``:
the running image is swapcam.app's, with our Info.plist and our camera permission.

Without a compiler (or a shared libpython) an ``osacompile`` applet starts
``swapcam-gui`` instead: a real, launchable program, but the app then runs as Python
(its name in the menu bar; the camera prompt names the applet). The bundle is signed
ad hoc (``codesign -s -``) when ``codesign`` is there.
"""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# what the launcher runs: drop the script folder '' that -c puts first (Finder starts the
# app in /), forget the launcher's environment variable, then the GUI entry point
BOOT = ("import os, sys; sys.path[:] = [p for p in sys.path if p]; "
        "os.environ.pop('PYTHONEXECUTABLE', None); sys.argv[0] = 'swapcam-gui'; "
        "import main; sys.exit(main.gui_main())")

LAUNCHER_C = r"""/* swapcam.app's executable: runs swapcam's Python inside this process, so macOS
   sees swapcam.app (its Info.plist, its camera permission, its name). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *LIBPYTHON = @LIBPYTHON@;
static const char *PYTHON = @PYTHON@;  /* sys.executable: its pyvenv.cfg makes sys.prefix */
static const char *BOOT = @BOOT@;

typedef int (*py_bytes_main)(int, char **);

int main(int argc, char **argv) {
    void *library = dlopen(LIBPYTHON, RTLD_NOW | RTLD_GLOBAL);
    if (library == NULL) {
        fprintf(stderr, "swapcam: cannot load %s: %s\n", LIBPYTHON, dlerror());
        return 127;
    }
    py_bytes_main run = (py_bytes_main)dlsym(library, "Py_BytesMain");
    if (run == NULL) {
        fprintf(stderr, "swapcam: %s has no Py_BytesMain\n", LIBPYTHON);
        return 127;
    }
    /* macOS: the program name Python computes its prefix from (argv[0] too elsewhere) */
    setenv("PYTHONEXECUTABLE", PYTHON, 1);
    char **args = calloc((size_t)argc + 3, sizeof(char *));
    if (args == NULL) {
        return 127;
    }
    int count = 0;
    args[count++] = (char *)PYTHON;
    args[count++] = "-c";
    args[count++] = (char *)BOOT;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-psn_", 5) != 0) {  /* old LaunchServices' process serial */
            args[count++] = argv[i];
        }
    }
    return run(count, args);
}
"""


def c_string(text: str) -> str:
    """``text`` as a C string literal: printable ASCII as is, every other byte of its
    UTF-8 (and ``"``, ``\\``, ``?``: no trigraphs) as an octal escape."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def launcher_source(libpython: Path, python: Path) -> str:
    return (LAUNCHER_C.replace("@LIBPYTHON@", c_string(str(libpython)))
            .replace("@PYTHON@", c_string(str(python))).replace("@BOOT@", c_string(BOOT)))


def libpython() -> Path | None:
    """This Python's shared library (a framework build's ``Python``, or ``libpython*.dylib``
    / ``.so``); None for a statically linked Python."""
    var = sysconfig.get_config_var
    names = [str(var(n)) for n in ("INSTSONAME", "LDLIBRARY") if var(n)]
    folders = [Path(str(var("PYTHONFRAMEWORKPREFIX") or "/nonexistent")),
               Path(str(var("LIBDIR") or "/nonexistent")), Path(sys.base_prefix) / "lib"]
    for folder in folders:
        for name in names:
            path = folder / name
            if path.is_file() and path.suffix != ".a":
                return path
    return None


def c_compiler() -> str | None:
    """``cc`` when it is a working compiler: on macOS ``/usr/bin/cc`` is a stub that offers
    to install the command-line tools unless ``xcode-select -p`` finds them."""
    compiler = shutil.which("cc")
    if compiler is None:
        return None
    select = shutil.which("xcode-select")
    if select is not None and subprocess.run([select, "-p"], capture_output=True,
                                             check=False).returncode != 0:
        return None
    return compiler


class BundleError(RuntimeError):
    """The launcher could not be built; the message says why."""


def compile_launcher(executable: Path) -> bool:
    """Build the C launcher at ``executable``; False when this Mac cannot (no compiler, or
    no shared libpython), BundleError when the compiler fails."""
    compiler, library = c_compiler(), libpython()
    if compiler is None or library is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "swapcam_launcher.c"
        source.write_text(launcher_source(library, Path(sys.executable)), encoding="utf-8")
        done = subprocess.run([compiler, "-O2", "-o", str(executable), str(source)],
                              capture_output=True, text=True, check=False)
    if done.returncode != 0 or not executable.is_file():
        raise BundleError(f"cc could not build the launcher: {done.stderr.strip()}")
    return True


def applescript_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_applet(bundle: Path, gui: Path) -> None:
    """An ``osacompile`` applet at ``bundle`` that starts ``gui`` and quits."""
    osacompile = shutil.which("osacompile")
    if osacompile is None:
        raise BundleError("neither a C compiler (xcode-select --install) nor osacompile "
                          "was found to build the launcher")
    script = (f"do shell script \"exec \" & quoted form of {applescript_string(str(gui))}"
              " & \" >/dev/null 2>&1 &\"")
    done = subprocess.run([osacompile, "-o", str(bundle), "-e", script],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BundleError(f"osacompile could not build the launcher: {done.stderr.strip()}")


def merge_plist(path: Path, keys: dict[str, object]) -> None:
    """``keys`` over the Info.plist at ``path`` (kept: what osacompile wrote for itself)."""
    info = plistlib.loads(path.read_bytes()) if path.is_file() else {}
    info.update(keys)
    path.write_bytes(plistlib.dumps(info))


def sign(bundle: Path) -> str | None:
    """Sign ad hoc (what LaunchServices and the camera permission bind to); the reason
    when it could not be signed."""
    codesign = shutil.which("codesign")
    if codesign is None:
        return "codesign was not found: the app is unsigned"
    done = subprocess.run([codesign, "--force", "--deep", "--sign", "-", str(bundle)],
                          capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else f"codesign failed: {done.stderr.strip()}"
