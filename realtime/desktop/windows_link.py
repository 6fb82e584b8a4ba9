"""Windows: a Start-menu shortcut written through the shell's wide-character API.

The Windows Script Host's ``WScript.Shell`` shortcut object goes through the ANSI code
page: under ``C:\\Users\\王`` its ``Save()`` fails or the target is silently saved as
``C:\\Users\\?\\...`` (the file exists, the shortcut opens nothing). So PowerShell
compiles a few lines of C# (``Add-Type``, in every Windows PowerShell 5.1 and PowerShell
7) that call ``IShellLinkW`` and ``IPersistFile::Save`` (UTF-16 throughout), set the
shortcut's ``System.AppUserModel.ID`` (the ID the window takes, so a pinned window and
the shortcut are one taskbar button), and read the target back through the same API.

The paths travel in environment variables (Unicode on Windows); PowerShell writes its
messages as UTF-8 and they are decoded as such, not in the console's ANSI code page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from realtime.desktop.process import APP_USER_MODEL_ID

CSHARP = r"""
using System;
using System.Runtime.InteropServices;
using System.Runtime.InteropServices.ComTypes;
using System.Text;

[ComImport, Guid("000214F9-0000-0000-C000-000000000046"),
 InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
public interface IShellLinkW {
    void GetPath([Out, MarshalAs(UnmanagedType.LPWStr)] StringBuilder file, int size,
                 IntPtr data, uint flags);
    void GetIDList(out IntPtr list);
    void SetIDList(IntPtr list);
    void GetDescription([Out, MarshalAs(UnmanagedType.LPWStr)] StringBuilder text, int size);
    void SetDescription([MarshalAs(UnmanagedType.LPWStr)] string text);
    void GetWorkingDirectory([Out, MarshalAs(UnmanagedType.LPWStr)] StringBuilder dir, int size);
    void SetWorkingDirectory([MarshalAs(UnmanagedType.LPWStr)] string dir);
    void GetArguments([Out, MarshalAs(UnmanagedType.LPWStr)] StringBuilder args, int size);
    void SetArguments([MarshalAs(UnmanagedType.LPWStr)] string args);
    void GetHotkey(out short key);
    void SetHotkey(short key);
    void GetShowCmd(out int show);
    void SetShowCmd(int show);
    void GetIconLocation([Out, MarshalAs(UnmanagedType.LPWStr)] StringBuilder path, int size,
                         out int index);
    void SetIconLocation([MarshalAs(UnmanagedType.LPWStr)] string path, int index);
    void SetRelativePath([MarshalAs(UnmanagedType.LPWStr)] string path, int reserved);
    void Resolve(IntPtr window, int flags);
    void SetPath([MarshalAs(UnmanagedType.LPWStr)] string file);
}

[StructLayout(LayoutKind.Sequential, Pack = 4)]
public struct PropertyKey { public Guid fmtid; public uint pid; }

[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct PropVariant {
    [FieldOffset(0)] public ushort vt;
    [FieldOffset(8)] public IntPtr pointer;
}

[ComImport, Guid("886D8EEB-8CF2-4446-8D02-CDBA1DBDCF99"),
 InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
public interface IPropertyStore {
    void GetCount(out uint count);
    void GetAt(uint index, out PropertyKey key);
    void GetValue(ref PropertyKey key, out PropVariant value);
    void SetValue(ref PropertyKey key, ref PropVariant value);
    void Commit();
}

public static class SwapcamLink {
    public static string Write(string link, string target, string icon, string folder,
                               string comment, string appId) {
        Type type = Type.GetTypeFromCLSID(new Guid("00021401-0000-0000-C000-000000000046"));
        IShellLinkW shell = (IShellLinkW)Activator.CreateInstance(type);
        shell.SetPath(target);
        shell.SetIconLocation(icon, 0);
        shell.SetWorkingDirectory(folder);
        shell.SetDescription(comment);
        PropertyKey key = new PropertyKey();
        key.fmtid = new Guid("9F4C2855-9F79-4B39-A8D0-E1D42DE1D5F3");  // AppUserModel
        key.pid = 5;  // System.AppUserModel.ID
        PropVariant value = new PropVariant();
        value.vt = 31;  // VT_LPWSTR
        value.pointer = Marshal.StringToCoTaskMemUni(appId);
        try {
            IPropertyStore store = (IPropertyStore)shell;
            store.SetValue(ref key, ref value);
            store.Commit();
        } finally {
            Marshal.FreeCoTaskMem(value.pointer);
        }
        ((IPersistFile)shell).Save(link, true);
        IShellLinkW saved = (IShellLinkW)Activator.CreateInstance(type);
        ((IPersistFile)saved).Load(link, 0);
        StringBuilder path = new StringBuilder(32768);
        saved.GetPath(path, path.Capacity, IntPtr.Zero, 4);  // SLGP_RAWPATH
        return path.ToString();
    }
}
"""

SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8; "
    "try { "
    "Add-Type -TypeDefinition $env:SWAPCAM_CSHARP; "
    "$saved = [SwapcamLink]::Write($env:SWAPCAM_LNK, $env:SWAPCAM_TARGET, $env:SWAPCAM_ICON, "
    "$env:USERPROFILE, $env:SWAPCAM_COMMENT, $env:SWAPCAM_APPID); "
    "if ($saved -ne $env:SWAPCAM_TARGET) { "
    "[Console]::Error.WriteLine(\"the shortcut's target reads back as '$saved'\"); exit 3 } "
    "} catch { [Console]::Error.WriteLine($_.Exception.Message); exit 2 }"
)


class LinkError(RuntimeError):
    """PowerShell could not write the shortcut; the message is PowerShell's."""


def powershell() -> str:
    found = shutil.which("powershell") or shutil.which("pwsh")
    if found is None:
        raise LinkError("PowerShell was not found on PATH: it writes the Start-menu shortcut")
    return found


def decode(output: bytes | str | None) -> str:
    """PowerShell's output, written as UTF-8 by the script (never the ANSI code page)."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    return output.decode("utf-8", errors="replace")


def write_link(link: Path, target: Path, icon: Path, comment: str) -> None:
    """Write ``link`` (a ``.lnk``) starting ``target`` with ``icon``; LinkError on failure."""
    env = {**os.environ, "SWAPCAM_LNK": str(link), "SWAPCAM_TARGET": str(target),
           "SWAPCAM_ICON": str(icon), "SWAPCAM_COMMENT": comment,
           "SWAPCAM_APPID": APP_USER_MODEL_ID, "SWAPCAM_CSHARP": CSHARP}
    done = subprocess.run([powershell(), "-NoProfile", "-NonInteractive", "-Command", SCRIPT],
                          env=env, capture_output=True, check=False)
    if done.returncode != 0 or not link.exists():
        said = (decode(done.stderr) or decode(done.stdout)).strip()
        raise LinkError(f"PowerShell could not write {link} (exit {done.returncode}): {said}")
