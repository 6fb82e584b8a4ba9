"""The main window's models and settings changes: the Models dialog, the probe of
installed models and engines, and a change from the controls applied live or by a
rebuild."""

from __future__ import annotations

import logging
from typing import Any

from realtime.ui import controller as ctl
from realtime.ui.model_dialog import ModelDialog
from realtime.ui.window_lifecycle import LifecycleRoom

log = logging.getLogger(__name__)


class ModelsRoom(LifecycleRoom):
    """What runs (model, engine) and what the controls change."""

    def _probe(self) -> tuple[list[str], dict[str, str | None]]:
        return ctl.installed_swappers(self.controller.models_dir), ctl.engine_status()

    def _probed(self, result: tuple[list[str], dict[str, str | None]]) -> None:
        installed, engines = result
        self.controls.set_models(installed, self.settings.model)
        self.controls.set_engines(engines, self.settings.engine, self.backend)

    def apply_changes(self, changes: dict[str, Any]) -> None:
        """A change from the controls: save it, then apply it live or rebuild."""
        before = self.settings
        self._change(**changes)
        if any(getattr(before, k) != getattr(self.settings, k) for k in ctl.REBUILD_FIELDS):
            self.controls.set_models(self.controls_models(), self.settings.model)
            self.rebuild()
            return
        self.controller.update_settings(self.settings)
        vcam_fields = ("vcam_width", "vcam_height", "vcam_fps", "ai_label")
        if self.vcam_wanted and any(k in changes for k in vcam_fields):
            self.set_virtual_camera(True)  # a new output with the new size/label
        if "record_path" in changes:
            self.controls.set_recording(self.record_wanted, f"Saves to {self._record_folder()}")

    def controls_models(self) -> list[str]:
        combo = self.controls.model
        return [str(combo.itemData(i)) for i in range(combo.count())
                if combo.itemData(i) not in (None, "__get_more__")
                and "(not installed)" not in combo.itemText(i)]

    def show_model_dialog(self, names: tuple[str, ...] | None = None, reason: str = "") -> None:
        if self.model_dialog is not None:
            self.model_dialog.raise_()
            return
        wanted = names or tuple(n for model in ctl.REQUIRED_MODELS
                                for n in ctl.REQUIRED_MODELS[model])
        dialog = ModelDialog(self.controller.models_dir, list(dict.fromkeys(wanted)),
                             reason=reason, parent=self)
        self.model_dialog = dialog
        dialog.finished.connect(self._model_dialog_closed)
        dialog.open()
        self.controls.set_models(self.controls_models(), self.settings.model)

    def _model_dialog_closed(self, _result: int) -> None:
        self.model_dialog = None
        self.probe_worker.submit("probe models", self._probe, self._probed)
        if (not self.controller.swapping and not self._closing
                and not ctl.missing_models(self.controller.models_dir, self.settings.model)):
            self.rebuild()
