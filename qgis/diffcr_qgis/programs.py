"""Where the diffcr programs, the default model, the training configs and the GDAL plugin are.

The provider never links the C code into QGIS: it runs the command-line programs
(diffcr-decloud, diffcr-train, diffcr-evaluate) as subprocesses. This module finds them.

Search order for a program (the first directory holding an executable file of that name wins):

1. ``bin/`` beside the plugin (``diffcr_qgis/bin/``), where ``scripts/install_qgis_plugin.sh``
   copies the built programs: a copied plugin folder is then self-contained;
2. the directories listed in the ``DIFFCR_BIN_DIR`` environment variable (one directory, or
   several separated by ``os.pathsep`` -- ``:`` on Linux -- because a build tree keeps the programs
   in different folders: ``build/algorithms``, ``build/core``, ``build/plugin``);
3. ``PATH``;
4. ``<prefix>/bin`` when the plugin was installed by CMake under ``<prefix>/share/diffcr/qgis``
   (so ``make install`` to a prefix whose bin is not on PATH still works).

Data files (default model, training configs) are looked up beside the plugin first (the
install script copies them there), then in the source tree the plugin folder sits in
(``qgis/diffcr_qgis`` -> ``samples/model``, ``configs``), then in ``<prefix>/share/diffcr``.
"""
import glob
import os

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
# qgis/diffcr_qgis -> the source tree's root; <prefix>/share/diffcr/qgis/diffcr_qgis -> share/diffcr
_PARENT2 = os.path.dirname(os.path.dirname(PLUGIN_DIR))

DEFAULT_MODEL_NAME = 'diffcr_default.safetensors'
# Preferred training configs, best first: a small config meant for quick runs, then the test one.
TRAIN_CONFIG_NAMES = ('train_tiny.json', 'train_small.json', 'tiny_test.json', 'diffcr_paper.json')


def bin_dirs():
    """The directories searched for programs, in search order (see the module docstring)."""
    dirs = [os.path.join(PLUGIN_DIR, 'bin')]
    env = os.environ.get('DIFFCR_BIN_DIR', '')
    dirs += [d for d in env.split(os.pathsep) if d]
    dirs += [d for d in os.environ.get('PATH', '').split(os.pathsep) if d]
    # <prefix>/share/diffcr/qgis/diffcr_qgis -> <prefix>/bin
    prefix = os.path.dirname(os.path.dirname(_PARENT2))
    dirs.append(os.path.join(prefix, 'bin'))
    return dirs


def find_program(name):
    """Absolute path of program ``name`` (e.g. 'diffcr-decloud'), or None if it is nowhere."""
    for d in bin_dirs():
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    return None


def program_not_found_message(name):
    """A message telling the user where ``name`` was looked for and how to make it found."""
    return ('{0} was not found. It is looked for in {1}, then in the folders of the DIFFCR_BIN_DIR '
            'environment variable, then on PATH. Build diffcr (cmake) and install the plugin with '
            'scripts/install_qgis_plugin.sh, or set DIFFCR_BIN_DIR to the folder holding '
            '{0}.').format(name, os.path.join(PLUGIN_DIR, 'bin'))


def _data_dirs(*subdirs):
    """Candidate folders for shipped data: beside the plugin, source tree, installed share."""
    out = []
    for sub in subdirs:
        out.append(os.path.join(PLUGIN_DIR, sub))
    for sub in subdirs:
        out.append(os.path.join(_PARENT2, sub))
    out.append(os.path.dirname(_PARENT2))   # <prefix>/share/diffcr itself
    return out


def default_model():
    """The shipped default model, or None when it is not there (not built/installed yet)."""
    for d in [os.path.join(PLUGIN_DIR, 'model'), os.path.join(_PARENT2, 'samples', 'model'),
              os.path.dirname(_PARENT2), '/usr/local/share/diffcr', '/usr/share/diffcr']:
        path = os.path.join(d, DEFAULT_MODEL_NAME)
        if os.path.isfile(path):
            return path
    return None


def default_train_config():
    """The first training config found (see TRAIN_CONFIG_NAMES), or None."""
    dirs = [os.path.join(PLUGIN_DIR, 'configs'), os.path.join(_PARENT2, 'configs'),
            os.path.join(os.path.dirname(_PARENT2), 'configs')]
    for name in TRAIN_CONFIG_NAMES:
        for d in dirs:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                return path
    return None


def find_gdal_plugin():
    """gdal_decloud.so (the ``decloud`` pixel function), or None.

    Looked for beside the programs (plugin bin/, DIFFCR_BIN_DIR -- a build tree's ``plugin``
    folder can be listed there), in GDAL_DRIVER_PATH, in ``../plugin`` of the folder
    diffcr-decloud was found in (a build tree: build/algorithms -> build/plugin), and in GDAL's
    plugin folders under the install prefix, /usr/local and /usr.
    """
    dirs = bin_dirs()[:-1]
    dirs += [d for d in os.environ.get('GDAL_DRIVER_PATH', '').split(os.pathsep) if d]
    decloud = find_program('diffcr-decloud')
    if decloud:
        dirs.append(os.path.join(os.path.dirname(os.path.dirname(decloud)), 'plugin'))
    # Installed by CMake into GDAL's plugin folder (<prefix>/lib[/<multiarch>]/gdalplugins).
    prefix = os.path.dirname(os.path.dirname(_PARENT2))
    for base in (prefix, '/usr/local', '/usr'):
        dirs += sorted(glob.glob(os.path.join(base, 'lib*', 'gdalplugins')))
        dirs += sorted(glob.glob(os.path.join(base, 'lib*', '*', 'gdalplugins')))
    for d in dirs:
        path = os.path.join(d, 'gdal_decloud.so')
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None
