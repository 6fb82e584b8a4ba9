"""The settings panel: input, model and engine, faces, outputs, blending, detection,
hotkeys.

The panel only reports what the user did (``changed`` with the setting names and new
values, and a few action signals); the main window applies, saves and reacts. Filling
the panel from ``Settings`` never re-emits ``changed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from realtime.config import Settings
from realtime.faces.select import MAX_FACES_RANGE
from realtime.ui.camera_choices import camera_choices, is_camera_spec, unlisted_label

RESOLUTIONS: tuple[tuple[int, int], ...] = ((640, 480), (960, 540), (1280, 720), (1920, 1080))
ENGINE_LABELS: dict[str, str] = {
    "auto": "Auto (fastest available)",
    "tensorrt": "TensorRT (NVIDIA)",
    "onnxruntime-cuda": "ONNX Runtime CUDA",
    "onnxruntime-directml": "DirectML (Windows GPU)",
    "onnxruntime-coreml": "CoreML (Mac)",
    "onnxruntime-cpu": "ONNX Runtime CPU",
    "openvino": "OpenVINO CPU",
}
MODEL_LABELS: dict[str, str] = {
    "simswap-224": "SimSwap 224",
    "simswap-512": "SimSwap 512 (beta)",
    "inswapper-128": "inswapper 128",
}
GET_MORE = "__get_more__"
VIDEO_FILTER = "Video or image (*.mp4 *.mkv *.avi *.mov *.webm *.jpg *.jpeg *.png)"


def list_cameras() -> list[tuple[str, str]]:
    """(spec, label) of the cameras, by name, without opening them (cheap, GUI-safe)."""
    return camera_choices()


# the Blend group's mask choice: (label, Settings.mask, what it does: the item's tooltip).
# Labels stay short: the side panel is narrow and a cut-off label reads as a bug.
MASK_LABELS: tuple[tuple[str, str, str], ...] = (
    ("Auto", "auto", "Face parsing when its model is installed, else the box"),
    ("Face parsing", "parsing",
     "SimSwap's mask: only skin, brows, eyes, glasses, nose, lips and mouth are swapped; "
     "hair, ears and hands in front of the face stay real. Needs the face-parsing model."),
    ("Box", "box", "The whole aligned face region"),
)


# the Blend group's texture between two swaps: (label, Settings.texture, tooltip)
TEXTURE_LABELS: tuple[tuple[str, str, str], ...] = (
    ("Auto", "auto", "Follow the face when swapping is slower than the camera"),
    ("Follow the face", "flow",
     "Warps the newest swapped face with the person's own motion (mouth, eyes, brows; "
     "optical flow)"),
    ("Still", "static", "Shows the newest swap as it was swapped"),
)

# the Blend group's refresh order: (label, Settings.refresh_order, tooltip)
REFRESH_LABELS: tuple[tuple[str, str, str], ...] = (
    ("Auto", "auto", "Where the face changes when following the face, else in turn"),
    ("Where it changes", "error",
     "Swaps next the face its swap fits worst now (talking, turning), weighted by size; "
     "no face waits more than twice its turn"),
    ("In turn", "stalest", "Swaps every face in turn, the oldest swap first"),
)


def _add_explained_items(combo: QComboBox, items: tuple[tuple[str, str, str], ...],
                         what: str) -> None:
    """Short item texts; each item's explanation is its own tooltip (shown while the list
    is open) and the combo's tooltip lists them all."""
    for label, value, explanation in items:
        combo.addItem(label, value)
        combo.setItemData(combo.count() - 1, explanation, Qt.ItemDataRole.ToolTipRole)
    combo.setToolTip(what + ".\n" + "\n".join(f"{label}: {explanation}"
                                               for label, _v, explanation in items))


def _combo_data_index(combo: QComboBox, data: Any) -> int:
    for i in range(combo.count()):
        if combo.itemData(i) == data:
            return i
    return -1


class ControlsPanel(QWidget):
    changed = Signal(dict)  # {setting name: new value}
    vcam_toggled = Signal(bool)
    record_toggled = Signal(bool)
    get_models_requested = Signal()
    global_hotkeys_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._filling = False
        self._engine_short = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        # what a user needs first comes first (the camera, the model, whose face, where
        # it goes out): they fit a 1366×768 window without scrolling; tuning comes below
        layout.addWidget(self._input_box())
        layout.addWidget(self._model_box())
        layout.addWidget(self._faces_box())
        layout.addWidget(self._output_box())
        layout.addWidget(self._blend_box())
        layout.addWidget(self._detection_box())
        layout.addWidget(self._hotkeys_box())
        layout.addStretch(1)
        # rows a little tighter than the style's default, so the whole panel fits a
        # 900-px-high window without a scroll bar
        for form in self.findChildren(QFormLayout):
            form.setVerticalSpacing(4)
        # long entries (file names, engine names) must not widen the narrow side panel
        for combo in self.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)

    # -- building -----------------------------------------------------------------

    def _input_box(self) -> QGroupBox:
        box = QGroupBox("Input")
        form = QFormLayout(box)
        self.camera = QComboBox()
        self.camera.setToolTip("A camera, or a video/image file played in a loop")
        self.camera.activated.connect(self._camera_chosen)
        self.resolution = QComboBox()
        for w, h in RESOLUTIONS:
            self.resolution.addItem(f"{w} × {h}", (w, h))
        self.resolution.activated.connect(self._resolution_chosen)
        self.camera_fps = QSpinBox()
        self.camera_fps.setRange(5, 120)
        self.camera_fps.valueChanged.connect(
            lambda v: self._emit(camera_fps=float(v)))
        form.addRow("Camera", self.camera)
        form.addRow("Resolution", self.resolution)
        form.addRow("FPS", self.camera_fps)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.model = QComboBox()
        self.model.activated.connect(self._model_chosen)
        self.engine = QComboBox()
        self.engine.activated.connect(
            lambda _i: self._emit(engine=self.engine.currentData()))
        self.engine_note = QLabel()
        self.engine_note.setWordWrap(True)
        self.engine_note.setStyleSheet("color: #999; font-size: 11px;")
        form.addRow("Swapper", self.model)
        form.addRow("Engine", self.engine)
        form.addRow(self.engine_note)
        return box

    def _faces_box(self) -> QGroupBox:
        box = QGroupBox("Faces")
        form = QFormLayout(box)
        self.faces = QComboBox()
        self.faces.addItem("All faces", "all")
        self.faces.addItem("Largest face", "largest")
        self.faces.addItem("Match a reference photo…", "match")
        self.faces.activated.connect(self._faces_chosen)
        self.max_faces = QSpinBox()
        self.max_faces.setRange(*MAX_FACES_RANGE)
        self.max_faces.setToolTip(
            "Swap at most this many faces per frame, the largest first: each face costs a "
            "model call (on a CPU about a second each)")
        self.max_faces.valueChanged.connect(lambda v: self._emit(max_faces=int(v)))
        self.unassigned = QComboBox()
        self.unassigned.addItem("Wear the active source", "source")
        self.unassigned.addItem("Are left alone", "leave")
        self.unassigned.setToolTip(
            "Once you give a face its own identity (click it in the preview, or C then A), "
            "the faces nobody assigned wear the active source or stay as they are")
        self.unassigned.activated.connect(
            lambda i: self._emit(unassigned_faces=str(self.unassigned.itemData(i))))
        form.addRow("Swap", self.faces)
        form.addRow("Unassigned faces", self.unassigned)
        form.addRow("Faces at most", self.max_faces)
        return box

    def _detection_box(self) -> QGroupBox:
        box = QGroupBox("Detection")
        form = QFormLayout(box)
        self.det_threshold = QDoubleSpinBox()
        self.det_threshold.setRange(0.05, 0.95)
        self.det_threshold.setSingleStep(0.05)
        self.det_threshold.valueChanged.connect(lambda v: self._emit(det_threshold=float(v)))
        self.detect_every = QSpinBox()
        self.detect_every.setRange(1, 30)
        self.detect_every.setToolTip("Run the detector every N frames; track faces in between")
        self.detect_every.valueChanged.connect(lambda v: self._emit(detect_every=int(v)))
        self.detect_width = QSpinBox()
        self.detect_width.setRange(320, 1920)
        self.detect_width.setSingleStep(160)
        self.detect_width.setSuffix(" px")
        self.detect_width.setToolTip(
            "Width of the copy the built-in detector searches: larger finds smaller "
            "(more distant) faces and costs more CPU. SCRFD ignores it.")
        self.detect_width.valueChanged.connect(lambda v: self._emit(detect_width=int(v)))
        form.addRow("Threshold", self.det_threshold)
        form.addRow("Every N frames", self.detect_every)
        form.addRow("Search size", self.detect_width)
        return box

    def _blend_box(self) -> QGroupBox:
        box = QGroupBox("Blend")
        form = QFormLayout(box)
        self.feather = QSlider(Qt.Orientation.Horizontal)
        self.feather.setRange(0, 30)  # percent of the face size
        self.feather.valueChanged.connect(lambda v: self._emit(feather=v / 100.0))
        self.color_match = QCheckBox("Match skin colour")
        self.color_match.toggled.connect(lambda on: self._emit(color_match=bool(on)))
        self.mask_mode = QComboBox()
        _add_explained_items(self.mask_mode, MASK_LABELS,
                             "Which part of the swapped face is pasted on the camera's")
        self.mask_mode.activated.connect(lambda i: self._emit(mask=str(self.mask_mode.itemData(i))))
        self.texture = QComboBox()
        _add_explained_items(self.texture, TEXTURE_LABELS,
                             "What the frames between two swaps show when the swap is "
                             "slower than the camera")
        self.texture.activated.connect(lambda i: self._emit(texture=str(self.texture.itemData(i))))
        self.live_mouth = QCheckBox("Live mouth (teeth and tongue from the camera)")
        self.live_mouth.toggled.connect(lambda on: self._emit(live_mouth=bool(on)))
        form.addRow("Mask", self.mask_mode)
        form.addRow("Between swaps", self.texture)
        form.addRow(self.live_mouth)
        self.fade = QSlider(Qt.Orientation.Horizontal)
        self.fade.setRange(0, 1000)  # ms
        self.fade.setSingleStep(50)
        self.fade.setPageStep(100)
        self.fade.setToolTip(
            "Cross-fades a face's previous swap into a new one over this many milliseconds, "
            "so a new swap does not pop in (0: at once). Applies when swapping is slower "
            "than the camera.")
        self.fade.valueChanged.connect(lambda v: self._emit(fade_ms=float(v)))
        form.addRow("Swap fade", self.fade)
        self.refresh_order = QComboBox()
        _add_explained_items(self.refresh_order, REFRESH_LABELS,
                             "Which face a slow swapper swaps next when there are several")
        self.refresh_order.activated.connect(
            lambda i: self._emit(refresh_order=str(self.refresh_order.itemData(i))))
        form.addRow("Swap next", self.refresh_order)
        form.addRow("Edge feather", self.feather)
        form.addRow(self.color_match)
        self.identity_strength = QSlider(Qt.Orientation.Horizontal)
        self.identity_strength.setRange(0, 200)  # percent: 100 = the model's own swap
        self.identity_strength.setToolTip(
            "How far the face moves from the person's own identity towards the source's: "
            "100 % is the model's own swap, 0 % keeps the person's identity, up to 200 % "
            "pushes further. Other than 100 % costs one identity-encoder call per face.")
        self.identity_strength.valueChanged.connect(
            lambda v: self._emit(identity_strength=v / 100.0))
        form.addRow("Identity strength", self.identity_strength)
        self.enhance = QCheckBox("Enhance face (GFPGAN 1.4)")
        self.enhance.setToolTip(
            "Restores the swapped face with GFPGAN 1.4 (Apache-2.0) on the swap worker: "
            "sharper at 720p/1080p close-ups, fewer face refreshes per second on a CPU. "
            "Needs the gfpgan-1.4 model (Get models).")
        self.enhance.toggled.connect(
            lambda on: self._emit(enhance="gfpgan" if on else "off"))
        self.enhance_blend = QSlider(Qt.Orientation.Horizontal)
        self.enhance_blend.setRange(0, 100)  # percent of the enhanced face kept
        self.enhance_blend.valueChanged.connect(
            lambda v: self._emit(enhance_blend=v / 100.0))
        form.addRow(self.enhance)
        form.addRow("Enhance blend", self.enhance_blend)
        return box

    def _output_box(self) -> QGroupBox:
        box = QGroupBox("Output")
        form = QFormLayout(box)
        self.vcam = QCheckBox("Virtual camera  (V)")
        self.vcam.clicked.connect(lambda on: self.vcam_toggled.emit(bool(on)))
        self.vcam_status = QLabel("off")
        self.vcam_status.setWordWrap(True)
        self.vcam_status.setStyleSheet("color: #999; font-size: 11px;")
        self.vcam_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        size_row = QHBoxLayout()
        self.vcam_size = QComboBox()
        for w, h in RESOLUTIONS:
            self.vcam_size.addItem(f"{w} × {h}", (w, h))
        self.vcam_size.activated.connect(self._vcam_size_chosen)
        self.vcam_fps = QSpinBox()
        self.vcam_fps.setRange(5, 60)
        self.vcam_fps.setSuffix(" fps")
        self.vcam_fps.valueChanged.connect(lambda v: self._emit(vcam_fps=float(v)))
        size_row.addWidget(self.vcam_size, 1)
        size_row.addWidget(self.vcam_fps)
        self.ai_label = QCheckBox("“AI-modified” label on the output")
        self.ai_label.setToolTip("A small label in the corner so the people you talk to know")
        self.ai_label.toggled.connect(lambda on: self._emit(ai_label=bool(on)))
        record_row = QHBoxLayout()
        self.record = QPushButton("● Record  (R)")
        self.record.setCheckable(True)
        self.record.clicked.connect(lambda on: self.record_toggled.emit(bool(on)))
        self.record_folder = QPushButton("Folder…")
        self.record_folder.clicked.connect(self._record_folder_chosen)
        record_row.addWidget(self.record, 1)
        record_row.addWidget(self.record_folder)
        self.record_status = QLabel()
        self.record_status.setWordWrap(True)
        self.record_status.setStyleSheet("color: #999; font-size: 11px;")
        form.addRow(self.vcam)
        form.addRow(self.vcam_status)
        form.addRow("Size", size_row)
        form.addRow(self.ai_label)
        form.addRow(record_row)
        form.addRow(self.record_status)
        return box

    def _hotkeys_box(self) -> QGroupBox:
        box = QGroupBox("Hotkeys")
        form = QVBoxLayout(box)
        keys = QLabel("1–9 source · ] / [ next/prev · Space swap · O original · "
                      "R record · V virtual cam · F fullscreen · C / A pick a face and "
                      "give it an identity · F1 help")
        keys.setWordWrap(True)
        keys.setStyleSheet("font-size: 11px;")
        self.global_hotkeys = QCheckBox("System-wide (Ctrl+Alt+1…9, works in other apps)")
        self.global_hotkeys.clicked.connect(lambda on: self.global_hotkeys_toggled.emit(bool(on)))
        self.global_note = QLabel()
        self.global_note.setWordWrap(True)
        self.global_note.setStyleSheet("color: #999; font-size: 11px;")
        self.global_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addWidget(keys)
        form.addWidget(self.global_hotkeys)
        form.addWidget(self.global_note)
        return box

    # -- filling --------------------------------------------------------------------

    def set_settings(self, settings: Settings) -> None:
        """Show ``settings`` without emitting ``changed``."""
        self._filling = True
        try:
            self._fill_cameras(settings.camera)
            index = _combo_data_index(self.resolution,
                                      (settings.camera_width, settings.camera_height))
            if index < 0:
                self.resolution.addItem(f"{settings.camera_width} × {settings.camera_height}",
                                        (settings.camera_width, settings.camera_height))
                index = self.resolution.count() - 1
            self.resolution.setCurrentIndex(index)
            self.camera_fps.setValue(round(settings.camera_fps))
            self._select(self.model, settings.model)
            self._select(self.engine, settings.engine)
            mode = "match" if settings.faces.startswith("match:") else settings.faces
            self._select(self.faces, mode)
            if mode == "match":
                self.faces.setItemText(2, f"Match {Path(settings.faces[6:]).name}")
            self._select(self.unassigned, settings.unassigned_faces)
            self.det_threshold.setValue(settings.det_threshold)
            self.detect_every.setValue(settings.detect_every)
            self.detect_width.setValue(settings.detect_width)
            self.max_faces.setValue(settings.max_faces)
            self.feather.setValue(round(settings.feather * 100))
            self.color_match.setChecked(settings.color_match)
            self.identity_strength.setValue(round(settings.identity_strength * 100))
            self.enhance.setChecked(settings.enhance != "off")
            self.enhance_blend.setValue(round(settings.enhance_blend * 100))
            self._select(self.mask_mode, settings.mask)
            self._select(self.texture, settings.texture)
            self.live_mouth.setChecked(settings.live_mouth)
            self.fade.setValue(round(settings.fade_ms))
            self._select(self.refresh_order, settings.refresh_order)
            index = _combo_data_index(self.vcam_size, (settings.vcam_width, settings.vcam_height))
            if index >= 0:
                self.vcam_size.setCurrentIndex(index)
            self.vcam_fps.setValue(round(settings.vcam_fps))
            self.ai_label.setChecked(settings.ai_label)
            folder = settings.record_path or "the current folder"
            if not self.record.isChecked():
                self.record_status.setText(f"Saves to {folder}")
        finally:
            self._filling = False

    def set_models(self, installed: list[str], current: str) -> None:
        """The installed swappers, then “Get more models…”."""
        self._filling = True
        try:
            self.model.clear()
            for name in installed:
                self.model.addItem(MODEL_LABELS.get(name, name), name)
            if current not in installed:
                self.model.addItem(f"{MODEL_LABELS.get(current, current)} (not installed)",
                                   current)
            self.model.addItem("Get more models…", GET_MORE)
            self._select(self.model, current)
        finally:
            self._filling = False

    def set_engines(self, status: dict[str, str | None], current: str, in_use: str = "") -> None:
        """Every engine; unavailable ones greyed out with the reason as tooltip."""
        self._filling = True
        try:
            self.engine.clear()
            self.engine.addItem(ENGINE_LABELS["auto"], "auto")
            notes: list[str] = []
            # the panel is narrow: the note names them, the reasons go in the tooltips
            unusable: list[str] = []
            for name, label in ENGINE_LABELS.items():
                if name == "auto":
                    continue
                reason = status.get(name, "not known to this build")
                self.engine.addItem(label if reason is None else f"{label} — unavailable", name)
                index = self.engine.count() - 1
                if reason is not None:
                    self.engine.setItemData(index, reason, Qt.ItemDataRole.ToolTipRole)
                    item_model = self.engine.model()
                    if isinstance(item_model, QStandardItemModel):
                        item = item_model.item(index)
                        if item is not None:
                            item.setEnabled(name == current)
                    notes.append(f"{label}: {reason}")
                    unusable.append(label.split(" (")[0])
            self._select(self.engine, current)
            self._engine_short = (f"Not usable here: {', '.join(unusable)} (hover for why)"
                                  if unusable else "")
            self.engine_note.setToolTip("\n".join(notes))
            self.set_engine_in_use(in_use)
        finally:
            self._filling = False

    def set_engine_in_use(self, backend: str) -> None:
        lines = ([f"In use: {backend}"] if backend else []) + self._engine_short.splitlines()
        self.engine_note.setText("\n".join(lines))

    def set_vcam_state(self, on: bool, text: str, error: bool = False) -> None:
        self.vcam.setChecked(on)
        self.vcam_status.setText(text)
        self.vcam_status.setStyleSheet(
            f"color: {'#ff6b6b' if error else '#999'}; font-size: 11px;")

    def set_recording(self, on: bool, text: str) -> None:
        self.record.setChecked(on)
        self.record.setText("■ Stop recording  (R)" if on else "● Record  (R)")
        self.record_status.setText(text)

    def set_global_hotkeys(self, on: bool, note: str, available: bool) -> None:
        self.global_hotkeys.setChecked(on)
        self.global_hotkeys.setEnabled(available or on)
        self.global_note.setText(note)

    # -- reacting -------------------------------------------------------------------

    def _emit(self, **changes: Any) -> None:
        if not self._filling:
            self.changed.emit(changes)

    @staticmethod
    def _select(combo: QComboBox, data: Any) -> None:
        index = _combo_data_index(combo, data)
        if index >= 0:
            combo.setCurrentIndex(index)

    def _fill_cameras(self, current: str) -> None:
        self.camera.clear()
        for spec, label in list_cameras():
            self.camera.addItem(label, spec)
        if _combo_data_index(self.camera, current) < 0:
            self.camera.addItem(unlisted_label(current), current)
        self.camera.addItem("Video or image file…", "__file__")
        self._select(self.camera, current)
        # a file plays at its own size and rate: those boxes are for cameras
        is_camera = is_camera_spec(current)
        self.resolution.setEnabled(is_camera)
        self.camera_fps.setEnabled(is_camera)

    def _camera_chosen(self, index: int) -> None:
        spec = self.camera.itemData(index)
        if spec == "__file__":
            name, _ = QFileDialog.getOpenFileName(self, "Play a video file as the camera", "",
                                                  VIDEO_FILTER)
            if not name:
                return
            spec = name
        self._filling = True
        self._fill_cameras(str(spec))
        self._filling = False
        self._emit(camera=str(spec))

    def _resolution_chosen(self, index: int) -> None:
        width, height = self.resolution.itemData(index)
        self._emit(camera_width=int(width), camera_height=int(height))

    def _vcam_size_chosen(self, index: int) -> None:
        width, height = self.vcam_size.itemData(index)
        self._emit(vcam_width=int(width), vcam_height=int(height))

    def _model_chosen(self, index: int) -> None:
        name = self.model.itemData(index)
        if name == GET_MORE:
            self.get_models_requested.emit()
            return
        self._emit(model=str(name))

    def _faces_chosen(self, index: int) -> None:
        mode = self.faces.itemData(index)
        if mode == "match":
            name, _ = QFileDialog.getOpenFileName(self, "Photo of the face to swap", "",
                                                  "Images (*.jpg *.jpeg *.png *.bmp *.webp)")
            if not name:
                return
            self.faces.setItemText(2, f"Match {Path(name).name}")
            self._emit(faces=f"match:{name}")
        else:
            self._emit(faces=str(mode))

    def _record_folder_chosen(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings in")
        if folder:
            self.record_status.setText(f"Saves to {folder}")
            self._emit(record_path=folder)
