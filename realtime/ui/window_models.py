"""The models' room: the Models dialog, the probe of installed models and engines, and
a change from the controls applied live or by a rebuild."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from realtime.ui import controller as ctl
from realtime.ui.controls import ControlsPanel
from realtime.ui.model_dialog import ModelDialog
from realtime.ui.window_lifecycle import LifecycleRoom
from realtime.ui.window_outputs import OutputsRoom
from realtime.ui.window_state import WindowSettings
from realtime.ui.workers import SerialWorker

log = logging.getLogger(__name__)


class ModelsRoom(QObject):
    """What runs (model, engine) and what the controls change."""

    def __init__(self, prefs: WindowSettings, controller: ctl.Controller,
                 controls: ControlsPanel, probe_worker: SerialWorker,
                 lifecycle: LifecycleRoom, outputs: OutputsRoom,
                 dialog_parent: QWidget) -> None:
        super().__init__(controls)
        self.prefs = prefs
        self.controller = controller
        self.controls = controls
        self.probe_worker = probe_worker
        self.lifecycle = lifecycle
        self.outputs = outputs
        self.dialog_parent = dialog_parent
        self.dialog: ModelDialog | None = None
        self._closing = False
        controls.changed.connect(self.apply_changes)
        controls.get_models_requested.connect(lambda: self.show_model_dialog())
        lifecycle.built.connect(controls.set_engine_in_use)

    def show_installed(self) -> None:
        """The controls list the saved model now, and every installed one once probed."""
        settings = self.prefs.settings
        self.controls.set_models([settings.model], settings.model)
        self.controls.set_engines({}, settings.engine)
        self.probe_worker.submit("probe models and engines", self._probe, self._probed,
                                 lambda exc, _t: log.warning("probe failed: %s", exc))

    def _probe(self) -> tuple[list[str], dict[str, str | None]]:
        return ctl.installed_swappers(self.controller.models_dir), ctl.engine_status()

    def _probed(self, result: tuple[list[str], dict[str, str | None]]) -> None:
        installed, engines = result
        self.controls.set_models(installed, self.prefs.settings.model)
        self.controls.set_engines(engines, self.prefs.settings.engine, self.lifecycle.backend)

    def apply_changes(self, changes: dict[str, Any]) -> None:
        """A change from the controls: save it, then apply it live or rebuild."""
        before = self.prefs.settings
        self.prefs.change(**changes)
        after = self.prefs.settings
        if any(getattr(before, k) != getattr(after, k) for k in ctl.REBUILD_FIELDS):
            self.controls.set_models(self.controls_models(), after.model)
            self.lifecycle.rebuild()
            return
        self.controller.update_settings(after)
        self.outputs.settings_changed(changes)

    def controls_models(self) -> list[str]:
        combo = self.controls.model
        return [str(combo.itemData(i)) for i in range(combo.count())
                if combo.itemData(i) not in (None, "__get_more__")
                and "(not installed)" not in combo.itemText(i)]

    def show_model_dialog(self, names: tuple[str, ...] | None = None, reason: str = "") -> None:
        if self.dialog is not None:
            self.dialog.raise_()
            return
        wanted = names or tuple(n for model in ctl.REQUIRED_MODELS
                                for n in ctl.REQUIRED_MODELS[model])
        dialog = ModelDialog(self.controller.models_dir, list(dict.fromkeys(wanted)),
                             reason=reason, parent=self.dialog_parent)
        self.dialog = dialog
        dialog.finished.connect(self._dialog_closed)
        dialog.open()
        self.controls.set_models(self.controls_models(), self.prefs.settings.model)

    def close_dialog(self) -> None:
        """The window closes: the dialog goes with it and starts no rebuild."""
        self._closing = True
        if self.dialog is not None:
            self.dialog.reject()

    def _dialog_closed(self, _result: int) -> None:
        self.dialog = None
        self.probe_worker.submit("probe models", self._probe, self._probed)
        if (not self.controller.swapping and not self._closing
                and not ctl.missing_models(self.controller.models_dir,
                                           self.prefs.settings.model)):
            self.lifecycle.rebuild()
