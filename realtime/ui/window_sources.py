"""The source gallery's room: restoring, adding (files, folders, a remembered source
folder), removing, renaming and selecting identities; their vectors are computed on the
engine worker, in order after the pipeline build they belong to."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QStatusBar

from realtime.types import SourceFace
from realtime.ui import controller as ctl
from realtime.ui.banners import ErrorBanner
from realtime.ui.gallery import Entry, Gallery
from realtime.ui.messages import readable, tile_message
from realtime.ui.window_state import WindowSettings
from realtime.ui.workers import SerialWorker

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class SourcesRoom(QObject):
    """The gallery wired to the controller's source bank."""

    def __init__(self, prefs: WindowSettings, controller: ctl.Controller, gallery: Gallery,
                 worker: SerialWorker, banner: ErrorBanner, status: QStatusBar) -> None:
        super().__init__(gallery)
        self.prefs = prefs
        self.controller = controller
        self.gallery = gallery
        self.worker = worker  # the engine worker: after the build a source belongs to
        self.banner = banner
        self.status = status
        self._generation = 0  # the pipeline build the entries were last added to
        self._entry_generation: dict[int, int] = {}
        gallery.add_requested.connect(self.add_source)
        gallery.remove_requested.connect(self.remove_source)
        gallery.rename_requested.connect(self.rename_source)
        gallery.select_requested.connect(self.select_source)
        gallery.folder_requested.connect(lambda folder: self.use_source_folder(Path(folder)))

    def restore(self) -> None:
        """The saved sources and the remembered folder's photos, into the gallery."""
        settings = self.prefs.settings
        names = settings.source_names
        for i, spec in enumerate(settings.sources):
            paths = [Path(p) for p in spec.split(os.pathsep) if p]
            if paths:
                self.gallery.add_entry(paths, names[i] if i < len(names) else "")
        if settings.sources_dir:
            self._add_folder_photos(Path(settings.sources_dir).expanduser())
        self.gallery.set_active(settings.active_source)

    def add_all(self, generation: int) -> None:
        """A new pipeline (build ``generation``) was submitted: add every entry to it."""
        self._generation = generation
        for entry in self.gallery.entries:
            if entry.state != "failed":
                self._submit_add(entry)

    def has_ready(self) -> bool:
        return any(e.state == "ready" for e in self.gallery.entries)

    def use_source_folder(self, folder: Path) -> None:
        """Remember ``folder`` and add each of its photos not in the gallery yet (choosing
        a folder is a fresh start: photos removed earlier come back)."""
        self.prefs.change(sources_dir=str(folder), removed_sources=())
        self._add_folder_photos(folder)

    def _add_folder_photos(self, folder: Path) -> None:
        """Add the folder's photos that are neither in the gallery nor removed by the user."""
        if not folder.is_dir():
            self.banner.show_message(f"Source folder {folder} is not there any more.")
            return
        skip = {p for e in self.gallery.entries for p in e.paths}
        skip.update(self.prefs.settings.removed_sources)
        for child in sorted(folder.iterdir()):
            if child.suffix.lower() in IMAGE_SUFFIXES and str(child) not in skip:
                self.add_source([child])

    def _in_source_folder(self, path: str) -> bool:
        folder = self.prefs.settings.sources_dir
        return bool(folder) and Path(path).parent == Path(folder).expanduser()

    def add_source(self, paths: list[Path], name: str = "") -> Entry | None:
        """A new identity from ``paths`` (a folder adds each image in it)."""
        expanded: list[Path] = []
        for path in paths:
            if Path(path).is_dir():
                for child in sorted(Path(path).iterdir()):
                    if child.suffix.lower() in IMAGE_SUFFIXES:
                        self.add_source([child])
            else:
                expanded.append(Path(path))
        if not expanded:
            return None
        # a photo the user adds by hand is wanted again, also at the next start
        added = {str(p) for p in expanded}
        if added & set(self.prefs.settings.removed_sources):
            self.prefs.change(removed_sources=tuple(p for p in self.prefs.settings.removed_sources
                                               if p not in added))
        entry = self.gallery.add_entry(expanded, name)
        if self._generation > 0:  # before start(), the first build adds every entry
            self._submit_add(entry)
        self._save_sources()
        return entry

    def _submit_add(self, entry: Entry) -> None:
        generation = self._generation
        self._entry_generation[entry.key] = generation
        entry.state, entry.message = "busy", ""
        self.gallery.refresh()
        paths = [Path(p) for p in entry.paths]
        name = entry.name or None
        self.worker.submit(
            f"add source {entry.name}", lambda: self.controller.add_source(paths, name),
            lambda face: self._source_added(entry.key, generation, face),
            lambda exc, trace: self._source_failed(entry.key, generation, exc, trace))

    def _source_added(self, key: int, generation: int, face: SourceFace) -> None:
        if self._entry_generation.get(key) != generation or self.gallery.entry(key) is None:
            return
        self.gallery.set_ready(key, face)
        self.gallery.set_active(self.controller.active_source)
        self._save_sources()

    def _source_failed(self, key: int, generation: int, exc: BaseException, trace: str) -> None:
        if self._entry_generation.get(key) != generation:
            return
        if isinstance(exc, ctl.NotRunning):
            entry = self.gallery.entry(key)
            if entry is not None:
                entry.state, entry.message = "busy", ""
                self.gallery.refresh()
                self.gallery.tiles[key].status.setText("waiting for the model…")
                self.gallery.tiles[key].busy.setVisible(False)
            return
        log.debug("source failed:\n%s", trace)
        self.gallery.set_failed(key, tile_message(exc))
        self._save_sources()

    def remove_source(self, key: int) -> None:
        entry = self.gallery.entry(key)
        if entry is None:
            return
        was_ready = entry.state == "ready"
        self.gallery.remove_entry(key)
        self._entry_generation.pop(key, None)
        # the remembered folder would add its photos back at the next start
        from_folder = [p for p in entry.paths if self._in_source_folder(p)
                       and p not in self.prefs.settings.removed_sources]
        if len(entry.paths) == 1 and from_folder:
            self.prefs.change(removed_sources=(*self.prefs.settings.removed_sources, *from_folder))
        self._save_sources()
        if was_ready:
            paths = entry.paths
            self.worker.submit(f"remove {entry.name}",
                               lambda: self.controller.remove_source(paths),
                               lambda _r: self.show_selected(),
                               lambda exc, _t: self.banner.show_message(readable(exc)))

    def rename_source(self, key: int, name: str) -> None:
        entry = self.gallery.entry(key)
        if entry is None:
            return
        self.gallery.rename_entry(key, name)
        self._save_sources()
        paths = entry.paths
        self.worker.submit(f"rename {name}", lambda: self.controller.rename_source(paths, name),
                           None, lambda exc, _t: self.banner.show_message(readable(exc)))

    def _save_sources(self) -> None:
        kept = [e for e in self.gallery.entries if e.state != "failed"]
        self.prefs.change(sources=tuple(os.pathsep.join(e.paths) for e in kept),
                     source_names=tuple(e.name for e in kept))

    def select_source(self, index: int) -> None:
        if self.controller.select_source(index):
            self.show_selected()
        else:
            count = self.controller.source_count()
            self.status.showMessage(
                f"There is no source {index + 1} (you have {count}); add photos below.", 4000)

    def show_selected(self) -> None:
        """The controller's active source, shown in the gallery and saved."""
        index = self.controller.active_source
        self.gallery.set_active(index)
        sources = self.controller.sources()
        name = sources[index].name if index < len(sources) else ""
        self.status.showMessage(f"Source {index + 1}: {name}", 3000)
        self.prefs.change(active_source=index)
