; Inno Setup script for the Windows installer (not built in this repository's CI: Linux only).
; After `pyinstaller packaging\ckpt-gui.spec` has produced dist\ckpt-gui\ on Windows:
;     iscc /DVersion=0.1.0 packaging\windows\ckpt-gui.iss
; writes dist\ckpt-gui-0.1.0-setup.exe. See docs/packaging.md.
#ifndef Version
  #define Version "0.1.0"
#endif

[Setup]
AppId={{6F0C2B1E-7D4A-4E7B-9C55-2B1F0C6E9A41}
AppName=ckpt-gui
AppVersion={#Version}
AppPublisher=ckpt-gui developers
DefaultDirName={autopf}\ckpt-gui
DefaultGroupName=ckpt-gui
; Per-user install without admin rights by default; the dialog offers all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=ckpt-gui-{#Version}-setup
SetupIconFile=..\icons\ckpt-gui.ico
UninstallDisplayIcon={app}\ckpt-gui-desktop.exe
Compression=lzma2/max
SolidCompression=yes
ChangesAssociations=yes
WizardStyle=modern

[Files]
Source: "..\..\dist\ckpt-gui\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\ckpt-gui"; Filename: "{app}\ckpt-gui-desktop.exe"
Name: "{autodesktop}\ckpt-gui"; Filename: "{app}\ckpt-gui-desktop.exe"; Tasks: desktopicon

[Tasks]
Name: desktopicon; Description: "Create a desktop shortcut"; Flags: unchecked
Name: associate; Description: "Open .safetensors, .pt, .pth and .ckpt files with ckpt-gui"
Name: associatebin; Description: "Also offer ckpt-gui for .bin files (Open with)"; Flags: unchecked

[Registry]
; One ProgID; each extension lists it under OpenWithProgids (so other programs keep theirs) and,
; for the checkpoint-only extensions, makes it the default.
Root: HKA; Subkey: "Software\Classes\ckpt-gui.checkpoint"; ValueType: string; ValueData: "Model checkpoint"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\ckpt-gui.checkpoint\DefaultIcon"; ValueType: string; ValueData: "{app}\ckpt-gui-desktop.exe,0"
Root: HKA; Subkey: "Software\Classes\ckpt-gui.checkpoint\shell\open\command"; ValueType: string; ValueData: """{app}\ckpt-gui-desktop.exe"" ""%1"""
Root: HKA; Subkey: "Software\Classes\.safetensors"; ValueType: string; ValueData: "ckpt-gui.checkpoint"; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.pt"; ValueType: string; ValueData: "ckpt-gui.checkpoint"; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.pth"; ValueType: string; ValueData: "ckpt-gui.checkpoint"; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.ckpt"; ValueType: string; ValueData: "ckpt-gui.checkpoint"; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.safetensors\OpenWithProgids"; ValueType: string; ValueName: "ckpt-gui.checkpoint"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.pt\OpenWithProgids"; ValueType: string; ValueName: "ckpt-gui.checkpoint"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.pth\OpenWithProgids"; ValueType: string; ValueName: "ckpt-gui.checkpoint"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.ckpt\OpenWithProgids"; ValueType: string; ValueName: "ckpt-gui.checkpoint"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.bin\OpenWithProgids"; ValueType: string; ValueName: "ckpt-gui.checkpoint"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associatebin

[Run]
Filename: "{app}\ckpt-gui-desktop.exe"; Description: "Start ckpt-gui"; Flags: nowait postinstall skipifsilent
