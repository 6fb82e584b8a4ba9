"""The faces' room: select a face in the preview (N), open its "who is this face" menu
(A or a click) and give it an identity."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint
from PySide6.QtWidgets import QMenu, QStatusBar

from realtime.ui import controller as ctl
from realtime.ui.preview import PreviewWidget
from realtime.ui.window_state import WindowSettings


class FacesRoom(QObject):
    """One identity per person: the menu and the selection outline."""

    def __init__(self, prefs: WindowSettings, controller: ctl.Controller,
                 preview: PreviewWidget, status: QStatusBar) -> None:
        super().__init__(preview)
        self.prefs = prefs
        self.controller = controller
        self.preview = preview
        self.status = status
        self.menu: QMenu | None = None  # the open "who is this face" menu
        preview.face_clicked.connect(self.show_face_menu)

    def _faces_left_to_right(self) -> list[int]:
        result = self.preview.result
        faces = sorted(result.faces, key=lambda f: float(f.box[0])) if result else []
        return [f.track_id for f in faces]

    def select_next_face(self) -> int | None:
        """Outline the next face in the preview (left to right); ``A`` then assigns it."""
        faces = self._faces_left_to_right()
        if not faces:
            self.preview.select_face(None)
            self.status.showMessage("No face in the preview to select", 3000)
            return None
        current = self.preview.selected_face
        track_id = faces[(faces.index(current) + 1) % len(faces)] if current in faces \
            else faces[0]
        self.preview.select_face(track_id)
        self.status.showMessage(f"Face {faces.index(track_id) + 1} of {len(faces)} "
                                     "selected: A gives it an identity", 4000)
        return track_id

    def assign_selected_face(self) -> None:
        """The identity menu for the outlined face (the first one when none is)."""
        track_id = self.preview.selected_face
        if track_id not in self._faces_left_to_right():
            track_id = self.select_next_face()
        if track_id is None:
            return
        rects = [r for tid, r in self.preview.face_rects() if tid == track_id]
        at = rects[-1].center().toPoint() if rects else self.preview.rect().center()
        self.show_face_menu(track_id, self.preview.mapToGlobal(at))

    def face_menu_for(self, track_id: int) -> QMenu:
        """Every gallery identity (keys 1–9), the active source, or leave the face alone;
        the face's current choice is checked."""
        from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE

        current = self.controller.faces.face_assignments().get(track_id)
        menu = QMenu(self.preview)
        menu.setTitle("Who is this face?")
        header = menu.addAction("This person wears…")
        header.setEnabled(False)
        choices: list[tuple[str, str]] = [
            (f"&{i + 1}  {s.name}" if i < 9 else s.name, s.name)
            for i, s in enumerate(self.controller.sources())]
        if not choices:
            empty = menu.addAction("(no photos in the gallery yet)")
            empty.setEnabled(False)
        for label, choice in choices:
            self._face_action(menu, label, track_id, choice, current)
        menu.addSeparator()
        self._face_action(menu, "&Active source (follows 1–9)", track_id, ACTIVE_SOURCE,
                          current)
        self._face_action(menu, "&Leave alone", track_id, LEAVE_ALONE, current)
        if current is not None:
            menu.addSeparator()
            policy = "active source" if self.prefs.settings.unassigned_faces == "source" \
                else "left alone"
            forget = menu.addAction(f"&Forget (like other faces: {policy})")
            forget.triggered.connect(lambda _c=False: self.assign_face(track_id, None))
        return menu

    def _face_action(self, menu: QMenu, label: str, track_id: int, choice: str,
                     current: str | None) -> None:
        action = menu.addAction(label)
        action.setCheckable(True)
        action.setChecked(choice == current)
        action.setData(choice)
        action.triggered.connect(lambda _c=False: self.assign_face(track_id, choice))

    def show_face_menu(self, track_id: int, global_pos: QPoint) -> None:
        """Pop up the identity menu for a face (a click on it in the preview)."""
        if self.menu is not None:
            self.menu.close()
        self.menu = self.face_menu_for(track_id)
        self.menu.aboutToHide.connect(self.preview.update)
        self.menu.popup(global_pos)

    def assign_face(self, track_id: int, choice: str | None) -> None:
        from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE

        if not self.controller.faces.assign_face(track_id, choice):
            self.status.showMessage("Faces can be assigned once the model runs", 4000)
            return
        what = {None: "its assignment is forgotten", ACTIVE_SOURCE: "wears the active source",
                LEAVE_ALONE: "is left alone"}.get(choice, f"wears {choice}")
        self.status.showMessage(f"This face {what}; followed while it moves", 4000)
        self.preview.set_face_badges(self.controller.faces.face_badges())
