#
# Module manifest for BmadGuard.
# build.ps1 (-Task Build) copies this file into output/BmadGuard/ beside BmadGuard.psm1, the format file,
# en-US/ help and bin/<tfm>/. Every export is listed by name: no wildcards (import stays fast and the
# surface is visible and testable).
#
@{
    RootModule           = 'BmadGuard.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '08b39895-680c-4ff2-9ff0-e4e7cdbcd1b9'
    Author               = 'BmadGuard contributors'
    CompanyName          = 'BmadGuard'
    Copyright            = '(c) BmadGuard contributors. All rights reserved.'
    Description          = 'A durable, locked, checksummed event store for BMAD AI agents: publish and read events from PowerShell (Windows PowerShell 5.1 and PowerShell 7.4+) with every acknowledged event fsynced, torn writes detected and quarantined, and cross-process writers serialized by an OS lock.'
    CompatiblePSEditions = @('Desktop', 'Core')
    PowerShellVersion    = '5.1'
    DotNetFrameworkVersion = '4.7.2'

    FormatsToProcess     = @('BmadGuard.format.ps1xml')

    FunctionsToExport    = @(
        'Invoke-BmadHealthCheck',
        'Install-BmadGuard',
        'Register-BmadMonitorTask',
        'Unregister-BmadMonitorTask'
    )
    CmdletsToExport      = @(
        'New-BmadStore',
        'Publish-BmadEvent',
        'Get-BmadEvent',
        'Get-BmadStoreStatistics',
        'Test-BmadIntegrity',
        'Repair-BmadStore',
        'Import-BmadLegacyBus',
        'Export-BmadEvent',
        'Backup-BmadStore',
        'Get-BmadBackup',
        'Restore-BmadStore',
        'Start-BmadMonitor',
        'Get-BmadMonitor',
        'Send-BmadAlert',
        'Get-BmadHealth',
        'Get-BmadMonitorTaskDefinition'
    )
    VariablesToExport    = @()
    AliasesToExport      = @()

    PrivateData          = @{
        PSData = @{
            Tags         = @('BMAD', 'EventStore', 'EventLog', 'MessageBus', 'Agents', 'JSONL', 'Durable', 'PSEdition_Desktop', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            ProjectUri   = 'https://github.com/bmadguard/bmadguard'
            LicenseUri   = 'https://github.com/bmadguard/bmadguard/blob/main/LICENSE'
            ReleaseNotes = 'First release: New-BmadStore, Publish-BmadEvent, Get-BmadEvent, Get-BmadStoreStatistics; backups and restore (Backup-BmadStore, Get-BmadBackup, Restore-BmadStore); monitoring, alerts and health (Start-BmadMonitor, Get-BmadMonitor, Send-BmadAlert, Get-BmadHealth, Invoke-BmadHealthCheck); deployment (Install-BmadGuard, Register-BmadMonitorTask, Unregister-BmadMonitorTask, Get-BmadMonitorTaskDefinition).'
        }
    }
}
