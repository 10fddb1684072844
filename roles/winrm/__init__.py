"""Windows targets over WinRM: the `@exha-winrm` connector and PowerShell helpers shared by the
Exchange role and the Windows DNS provider."""
