# BmadGuard root module.
#
# The cmdlets are compiled twice: bin/net8.0/BmadGuard.dll for PowerShell 7.4+ (the Core edition) and
# bin/netstandard2.0/BmadGuard.dll for Windows PowerShell 5.1 (Desktop). This file imports the one for the
# running edition as a nested module; the manifest's CmdletsToExport decides what the user sees.
# BmadGuard.dll's module initializer then resolves BmadGuard.Core and System.Text.Json from
# bin/<tfm>/dependencies/ (an isolated AssemblyLoadContext on 7.4+), so they never clash with the copies
# PowerShell or another module loaded.
#
# Script functions (advanced functions that compose the cmdlets) are added below the loader; every one
# of them is listed in the manifest's FunctionsToExport.

$importModule = Get-Command -Name Import-Module -Module Microsoft.PowerShell.Core

if ($PSEdition -eq 'Core') {
    if ($PSVersionTable.PSVersion -lt [version]'7.4') {
        throw "BmadGuard needs PowerShell 7.4 or later (this is $($PSVersionTable.PSVersion)); Windows PowerShell 5.1 also works."
    }
    $framework = 'net8.0'
}
else {
    $framework = 'netstandard2.0'
}

$binaryModulePath = [System.IO.Path]::Combine($PSScriptRoot, 'bin', $framework, 'BmadGuard.dll')

if ('BmadGuard.Commands.PublishBmadEventCommand' -as [type]) {
    # The assembly is already loaded in this process (Remove-Module then Import-Module, or a second
    # runspace): an assembly cannot be loaded twice, so import the loaded one again.
    $binaryModule = & $importModule -Assembly ([BmadGuard.Commands.PublishBmadEventCommand].Assembly) -Force -PassThru

    # Importing an already loaded assembly does not put its cmdlets into this module's scope
    # (https://github.com/PowerShell/PowerShell/issues/20710); add them so the manifest can export them.
    $addExportedCmdlet = [System.Management.Automation.PSModuleInfo].GetMethod(
        'AddExportedCmdlet', [System.Reflection.BindingFlags]'Instance, NonPublic')
    if ($binaryModule -and $addExportedCmdlet) {
        foreach ($cmdlet in $binaryModule.ExportedCmdlets.Values) {
            $null = $addExportedCmdlet.Invoke($ExecutionContext.SessionState.Module, @(, $cmdlet))
        }
    }
}
else {
    & $importModule -Name $binaryModulePath -ErrorAction Stop
}

# ------------------------------------------------------------------------------------------------------------
# Private helpers (no hyphen in their names: they are not exported and not commands a user calls).
# They sit above the exported functions so each exported function's text ends at the next one.
# ------------------------------------------------------------------------------------------------------------

function BmadCommonParameters {
    # The -WhatIf/-Confirm/-ErrorAction a script function received, to pass on explicitly to the commands it
    # calls: preference variables do not cross from the caller's scope into this module's.
    param([System.Collections.IDictionary] $Bound, [string] $ErrorActionValue)
    $common = @{}
    if ($ErrorActionValue) { $common['ErrorAction'] = $ErrorActionValue }
    foreach ($name in @('WhatIf', 'Confirm')) {
        if ($Bound.ContainsKey($name)) { $common[$name] = $Bound[$name] }
    }
    $common
}

function BmadStep {
    # One line of what Install-BmadGuard did: Done, Unchanged, Skipped, WouldDo (-WhatIf) or Failed.
    param([string] $Step, [string] $Status, [string] $Detail)
    Write-Verbose "${Step}: ${Status}: $Detail"
    [pscustomobject]@{
        PSTypeName = 'BmadGuard.InstallStep'
        Step       = $Step
        Status     = $Status
        Detail     = $Detail
    }
}

function InvokeBmadServiceManager {
    # Runs systemctl or launchctl and fails with a clear error when it does. A function of its own so Pester
    # can mock it (Mock -ModuleName BmadGuard InvokeBmadServiceManager) on machines without a service manager.
    param([string] $Program, [string[]] $ArgumentList)
    $output = & $Program @ArgumentList 2>&1
    if ($LASTEXITCODE -ne 0) {
        throw "'$Program $($ArgumentList -join ' ')' failed with exit code ${LASTEXITCODE}: $($output -join ' ')"
    }
    $output
}

function ResolveBmadTaskDefinition {
    # The unit, plist or task XML for a store, rendered by Core's templates through Get-BmadMonitorTaskDefinition.
    # Its errors are handed back (not thrown): the calling function writes them as its own with $PSCmdlet.WriteError.
    param([string] $Store, [string] $Scope, [string] $User, [string] $Executable, [string] $ConfigPath, [string] $Platform, [ref] $Errors)
    $parameters = @{ Scope = $Scope; ErrorAction = 'SilentlyContinue'; ErrorVariable = 'definitionErrors' }
    if ($Store) { $parameters['Store'] = $Store }
    if ($User) { $parameters['User'] = $User }
    if ($Executable) { $parameters['Executable'] = $Executable }
    if ($ConfigPath) { $parameters['ConfigPath'] = $ConfigPath }
    if ($Platform) { $parameters['Platform'] = $Platform }
    $definitionErrors = $null
    Get-BmadMonitorTaskDefinition @parameters
    $Errors.Value = @($definitionErrors)
}

function ConvertBmadHealthToJUnit {
    # A JUnit XML document (one testcase per check; Degraded and Unhealthy are failures) for CI systems.
    param([psobject] $Report)
    $settings = [System.Xml.XmlWriterSettings]::new()
    $settings.Indent = $true
    $settings.OmitXmlDeclaration = $false
    $settings.Encoding = [System.Text.UTF8Encoding]::new($false)
    $stream = [System.IO.MemoryStream]::new()
    $writer = [System.Xml.XmlWriter]::Create($stream, $settings)
    $failures = @($Report.Checks | Where-Object { $_.Status -ne 'Healthy' }).Count
    $seconds = [string]::Format([cultureinfo]::InvariantCulture, '{0:0.000}', $Report.Duration.TotalSeconds)
    $writer.WriteStartElement('testsuites')
    $writer.WriteAttributeString('name', 'BmadGuard health')
    $writer.WriteAttributeString('tests', [string]@($Report.Checks).Count)
    $writer.WriteAttributeString('failures', [string]$failures)
    $writer.WriteAttributeString('time', $seconds)
    $writer.WriteStartElement('testsuite')
    $writer.WriteAttributeString('name', "BmadGuard health: $($Report.Store)")
    $writer.WriteAttributeString('tests', [string]@($Report.Checks).Count)
    $writer.WriteAttributeString('failures', [string]$failures)
    $writer.WriteAttributeString('errors', '0')
    $writer.WriteAttributeString('time', $seconds)
    $writer.WriteAttributeString('timestamp', $Report.Time.UtcDateTime.ToString('yyyy-MM-ddTHH:mm:ss', [cultureinfo]::InvariantCulture))
    foreach ($check in $Report.Checks) {
        $writer.WriteStartElement('testcase')
        $writer.WriteAttributeString('classname', 'BmadGuard.Health')
        $writer.WriteAttributeString('name', $check.Name)
        if ($check.Status -ne 'Healthy') {
            $writer.WriteStartElement('failure')
            $writer.WriteAttributeString('type', $check.Status)
            $writer.WriteAttributeString('message', $check.Message)
            $writer.WriteString("$($check.Name): $($check.Status): $($check.Message)")
            $writer.WriteEndElement()
        }
        else {
            $writer.WriteElementString('system-out', $check.Message)
        }
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()
    $writer.WriteEndElement()
    $writer.Flush()
    $writer.Dispose()
    [System.Text.Encoding]::UTF8.GetString($stream.ToArray())
}

function BmadFormatDuration {
    # A TimeSpan as the configuration file writes durations: 500ms, 5s, 2m, 1h (the largest exact unit).
    param([TimeSpan] $Duration)
    $ms = [long]$Duration.TotalMilliseconds
    if ($ms % 3600000 -eq 0 -and $ms -gt 0) { return "$($ms / 3600000)h" }
    if ($ms % 60000 -eq 0 -and $ms -gt 0) { return "$($ms / 60000)m" }
    if ($ms % 1000 -eq 0 -and $ms -gt 0) { return "$($ms / 1000)s" }
    "${ms}ms"
}

function BmadMonitorConfigDocument {
    # The monitor and alert configuration Install-BmadGuard writes (keys as MonitorConfig reads them).
    param([string] $Interval, [string] $OnDamage, [string] $BackupInterval, [string[]] $Files, [string] $SlackWebhook, [string] $Webhook, [switch] $NoMonitor)
    $config = [ordered]@{
        interval       = $Interval
        onDamage       = $OnDamage.ToLowerInvariant()
        backupInterval = $BackupInterval
        files          = @($Files | Where-Object { $_ })
    }
    $alerts = [ordered]@{}
    if ($SlackWebhook) { $alerts['slackWebhook'] = $SlackWebhook }
    if ($Webhook) { $alerts['webhook'] = $Webhook }
    if ($alerts.Count -gt 0) { $config['alerts'] = $alerts }
    # No monitor installed on purpose (-NoMonitorTask): health does not count its absence as degradation.
    if ($NoMonitor) { $config['health'] = [ordered]@{ requireMonitor = $false } }
    ConvertTo-Json -InputObject $config -Depth 5
}

# ------------------------------------------------------------------------------------------------------------
# Exported script functions.
# ------------------------------------------------------------------------------------------------------------

function Invoke-BmadHealthCheck {
    # .ExternalHelp BmadGuard-Help.xml
    [CmdletBinding(HelpUri = 'https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Invoke-BmadHealthCheck.md', SupportsShouldProcess)]
    [OutputType([psobject], [string])]
    param(
        [Parameter(Position = 0, ValueFromPipelineByPropertyName)]
        [ValidateNotNullOrEmpty()]
        [ArgumentCompleter([BmadGuard.Completion.StoreCompleter])]
        [string] $Store,

        [ValidateNotNullOrEmpty()]
        [string] $ConfigPath,

        [ValidateSet('Object', 'Json', 'JUnit')]
        [string] $OutputFormat = 'Object',

        [switch] $Alert,

        [switch] $NoProbe,

        [switch] $PassThru
    )

    process {
        $common = BmadCommonParameters -Bound $PSBoundParameters -ErrorActionValue $ErrorActionPreference
        $storeArgs = @{}
        if ($Store) { $storeArgs['Store'] = $Store }
        # Without a health report there is nothing to judge: its errors become this command's (honouring the
        # caller's -ErrorAction), and nothing else runs.
        $healthArgs = @{ ErrorAction = 'SilentlyContinue'; ErrorVariable = 'healthErrors' }
        if ($Store) { $healthArgs['Store'] = $Store }
        if ($ConfigPath) { $healthArgs['ConfigPath'] = $ConfigPath }
        if ($NoProbe) { $healthArgs['NoProbe'] = $true }

        # Integrity, newest verified backup, monitor heartbeat, probe, disk, quarantine, outbox.
        $healthErrors = $null
        $health = Get-BmadHealth @healthArgs
        if (-not $health) {
            foreach ($e in @($healthErrors)) { $PSCmdlet.WriteError($e) }
            return
        }
        # One health model, Core's (the checks and the status `bmadguard health` reports): rendered here, not recomputed.
        $checks = [System.Collections.Generic.List[object]]::new()
        foreach ($c in $health.Checks) {
            $checks.Add([pscustomobject]@{ Name = $c.Name; Status = $c.Status; Message = $c.Message; Evidence = $c.Evidence })
        }
        $worst = $health.Status
        $exitCode = $health.ExitCode
        $report = [pscustomobject]@{
            PSTypeName = 'BmadGuard.HealthCheckResult'
            Store      = $health.Store
            Status     = $worst
            ExitCode   = $exitCode
            Checks     = $checks.ToArray()
            Time       = $health.Time
            Duration   = $health.Duration
            AlertSent  = $false
        }

        if ($Alert -and $worst -ne 'Healthy') {
            $failing = ($checks | Where-Object { $_.Status -ne 'Healthy' } | ForEach-Object { "$($_.Name): $($_.Status): $($_.Message)" }) -join "`n"
            $severity = if ($worst -eq 'Unhealthy') { 'Error' } else { 'Warning' }
            if ($PSCmdlet.ShouldProcess($health.Store, "Send a $severity alert: the store is $worst")) {
                # Confirmed once above for the whole function: the cmdlet must not ask again.
                $alertArgs = @{ Message = "BmadGuard health: $($health.Store) is $worst.`n$failing"; Severity = $severity; WhatIf = $false; Confirm = $false }
                if ($Store) { $alertArgs['Store'] = $Store }
                if ($ConfigPath) { $alertArgs['ConfigPath'] = $ConfigPath }
                if ($common.ContainsKey('ErrorAction')) { $alertArgs['ErrorAction'] = $common['ErrorAction'] }
                $deliveries = @(Send-BmadAlert @alertArgs)
                $report.AlertSent = @($deliveries | Where-Object { $_.Delivered }).Count -gt 0
            }
        }

        # For pipelines: 0 healthy, 1 degraded, 2 unhealthy, like 'bmadguard health'.
        $global:LASTEXITCODE = $exitCode

        switch ($OutputFormat) {
            'Json' {
                ConvertTo-Json -InputObject ([ordered]@{
                        store    = $report.Store
                        status   = $report.Status
                        exitCode = $report.ExitCode
                        time     = $report.Time.UtcDateTime.ToString('o', [cultureinfo]::InvariantCulture)
                        checks   = @($checks | ForEach-Object { [ordered]@{ name = $_.Name; status = $_.Status; message = $_.Message; evidence = $_.Evidence } })
                    }) -Depth 6
                if ($PassThru) { $report }
            }
            'JUnit' {
                ConvertBmadHealthToJUnit -Report $report
                if ($PassThru) { $report }
            }
            default { $report }
        }
    }
}

function Register-BmadMonitorTask {
    # .ExternalHelp BmadGuard-Help.xml
    [CmdletBinding(HelpUri = 'https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Register-BmadMonitorTask.md', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType([psobject])]
    param(
        [Parameter(Position = 0, ValueFromPipelineByPropertyName)]
        [ValidateNotNullOrEmpty()]
        [ArgumentCompleter([BmadGuard.Completion.StoreCompleter])]
        [string] $Store,

        [ValidateSet('User', 'System')]
        [string] $Scope = 'User',

        [ValidateNotNullOrEmpty()]
        [string] $User,

        [System.Management.Automation.PSCredential]
        [System.Management.Automation.Credential()]
        $Credential = [System.Management.Automation.PSCredential]::Empty,

        [ValidateNotNullOrEmpty()]
        [string] $Executable,

        [ValidateNotNullOrEmpty()]
        [string] $ConfigPath,

        [ValidateSet('Systemd', 'Launchd', 'TaskScheduler')]
        [string] $Platform,

        [switch] $Force
    )

    process {
        # A failure is this command's error, reported with $PSCmdlet.WriteError: it honours the caller's
        # -ErrorAction and never ends the calling script by itself (the steps inside stop at their first failure).
        try {
        $account = if ($Credential -ne [System.Management.Automation.PSCredential]::Empty) { $Credential.UserName } else { $User }
        $definitionErrors = @()
        $definition = ResolveBmadTaskDefinition -Store $Store -Scope $Scope -User $account -Executable $Executable -ConfigPath $ConfigPath -Platform $Platform -Errors ([ref]$definitionErrors)
        if (-not $definition) {
            foreach ($e in $definitionErrors) { $PSCmdlet.WriteError($e) }
            return
        }
        $result = [pscustomobject]@{
            PSTypeName  = 'BmadGuard.MonitorTask'
            Platform    = $definition.Platform
            Name        = $definition.Name
            InstallPath = $definition.InstallPath
            Store       = $definition.Store
            Status      = 'Registered'
        }

        switch ($definition.Platform) {
            'TaskScheduler' {
                $existing = Get-ScheduledTask -TaskName $definition.Name -TaskPath $definition.InstallPath -ErrorAction SilentlyContinue
                if ($existing -and -not $Force) {
                    $result.Status = 'Unchanged'
                    return $result
                }
                if (-not $PSCmdlet.ShouldProcess("$($definition.InstallPath)$($definition.Name)", 'Register the BmadGuard monitor task')) {
                    $result.Status = 'WouldRegister'
                    return $result
                }
                $taskArgs = @{ TaskName = $definition.Name; TaskPath = $definition.InstallPath; Xml = $definition.Content; Force = $true; ErrorAction = 'Stop' }
                if ($Credential -ne [System.Management.Automation.PSCredential]::Empty) {
                    $taskArgs['User'] = $Credential.UserName
                    $taskArgs['Password'] = $Credential.GetNetworkCredential().Password
                }
                $null = Register-ScheduledTask @taskArgs
                Start-ScheduledTask -TaskName $definition.Name -TaskPath $definition.InstallPath -ErrorAction Stop
            }
            default {
                if ($Credential -ne [System.Management.Automation.PSCredential]::Empty) {
                    Write-Warning "A $($definition.Platform) service runs as '$($Credential.UserName)' without a password: only the user name is used."
                }
                $installed = if (Test-Path -LiteralPath $definition.InstallPath) { [System.IO.File]::ReadAllText($definition.InstallPath) } else { $null }
                if ($installed -eq $definition.Content) {
                    $result.Status = 'Unchanged'
                    return $result
                }
                if (-not $PSCmdlet.ShouldProcess($definition.InstallPath, "Install and start the BmadGuard monitor ($($definition.Platform))")) {
                    $result.Status = 'WouldRegister'
                    return $result
                }
                $directory = [System.IO.Path]::GetDirectoryName($definition.InstallPath)
                $null = New-Item -ItemType Directory -Path $directory -Force -ErrorAction Stop -WhatIf:$false -Confirm:$false
                [System.IO.File]::WriteAllText($definition.InstallPath, $definition.Content, [System.Text.UTF8Encoding]::new($false))
                if ($definition.Platform -eq 'Systemd') {
                    $userFlag = @(if ($Scope -eq 'User') { '--user' })
                    $null = InvokeBmadServiceManager -Program 'systemctl' -ArgumentList ($userFlag + @('daemon-reload'))
                    $null = InvokeBmadServiceManager -Program 'systemctl' -ArgumentList ($userFlag + @('enable', '--now', $definition.Name))
                    if ($installed) {
                        $null = InvokeBmadServiceManager -Program 'systemctl' -ArgumentList ($userFlag + @('restart', $definition.Name))
                    }
                }
                else {
                    if ($installed) {
                        $null = InvokeBmadServiceManager -Program 'launchctl' -ArgumentList @('unload', '-w', $definition.InstallPath)
                    }
                    $null = InvokeBmadServiceManager -Program 'launchctl' -ArgumentList @('load', '-w', $definition.InstallPath)
                }
            }
        }
        $result
        }
        catch {
            $PSCmdlet.WriteError($_)
        }
    }
}

function Unregister-BmadMonitorTask {
    # .ExternalHelp BmadGuard-Help.xml
    [CmdletBinding(HelpUri = 'https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Unregister-BmadMonitorTask.md', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType([psobject])]
    param(
        [Parameter(Position = 0, ValueFromPipelineByPropertyName)]
        [ValidateNotNullOrEmpty()]
        [ArgumentCompleter([BmadGuard.Completion.StoreCompleter])]
        [string] $Store,

        [ValidateSet('User', 'System')]
        [string] $Scope = 'User',

        [ValidateSet('Systemd', 'Launchd', 'TaskScheduler')]
        [string] $Platform
    )

    process {
        # A failure is this command's error, reported with $PSCmdlet.WriteError: it honours the caller's
        # -ErrorAction and never ends the calling script by itself (the steps inside stop at their first failure).
        try {
        # The name depends only on the store, so any executable renders it.
        $definitionErrors = @()
        $definition = ResolveBmadTaskDefinition -Store $Store -Scope $Scope -Executable 'bmadguard' -Platform $Platform -Errors ([ref]$definitionErrors)
        if (-not $definition) {
            foreach ($e in $definitionErrors) { $PSCmdlet.WriteError($e) }
            return
        }
        $result = [pscustomobject]@{
            PSTypeName  = 'BmadGuard.MonitorTask'
            Platform    = $definition.Platform
            Name        = $definition.Name
            InstallPath = $definition.InstallPath
            Store       = $definition.Store
            Status      = 'Unregistered'
        }

        if ($definition.Platform -eq 'TaskScheduler') {
            $existing = Get-ScheduledTask -TaskName $definition.Name -TaskPath $definition.InstallPath -ErrorAction SilentlyContinue
            if (-not $existing) {
                $result.Status = 'NotRegistered'
                return $result
            }
            if (-not $PSCmdlet.ShouldProcess("$($definition.InstallPath)$($definition.Name)", 'Unregister the BmadGuard monitor task')) {
                $result.Status = 'WouldUnregister'
                return $result
            }
            Stop-ScheduledTask -TaskName $definition.Name -TaskPath $definition.InstallPath -ErrorAction SilentlyContinue
            Unregister-ScheduledTask -TaskName $definition.Name -TaskPath $definition.InstallPath -Confirm:$false -ErrorAction Stop
            return $result
        }

        if (-not (Test-Path -LiteralPath $definition.InstallPath)) {
            $result.Status = 'NotRegistered'
            return $result
        }
        if (-not $PSCmdlet.ShouldProcess($definition.InstallPath, "Stop and remove the BmadGuard monitor ($($definition.Platform))")) {
            $result.Status = 'WouldUnregister'
            return $result
        }
        if ($definition.Platform -eq 'Systemd') {
            $userFlag = @(if ($Scope -eq 'User') { '--user' })
            $null = InvokeBmadServiceManager -Program 'systemctl' -ArgumentList ($userFlag + @('disable', '--now', $definition.Name))
            Remove-Item -LiteralPath $definition.InstallPath -ErrorAction Stop -WhatIf:$false -Confirm:$false
            $null = InvokeBmadServiceManager -Program 'systemctl' -ArgumentList ($userFlag + @('daemon-reload'))
        }
        else {
            $null = InvokeBmadServiceManager -Program 'launchctl' -ArgumentList @('unload', '-w', $definition.InstallPath)
            Remove-Item -LiteralPath $definition.InstallPath -ErrorAction Stop -WhatIf:$false -Confirm:$false
        }
        $result
        }
        catch {
            $PSCmdlet.WriteError($_)
        }
    }
}

function Install-BmadGuard {
    # .ExternalHelp BmadGuard-Help.xml
    [CmdletBinding(HelpUri = 'https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Install-BmadGuard.md', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType([psobject])]
    param(
        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty()]
        [ArgumentCompleter([BmadGuard.Completion.StoreCompleter])]
        [string] $Store,

        [ValidateNotNullOrEmpty()]
        [string] $LegacyBusPath,

        [ValidateNotNullOrEmpty()]
        [string] $BackupDestination,

        [BmadGuard.DurationTransformation()]
        [TimeSpan] $Interval = [TimeSpan]::FromSeconds(5),

        [ValidateSet('Alert', 'Repair', 'Restore')]
        [string] $OnDamage = 'Repair',

        [BmadGuard.DurationTransformation()]
        [TimeSpan] $BackupInterval = [TimeSpan]::FromHours(1),

        [ValidateNotNullOrEmpty()]
        [string] $SlackWebhook,

        [ValidateNotNullOrEmpty()]
        [string] $Webhook,

        [ValidateSet('User', 'System')]
        [string] $Scope = 'User',

        [ValidateNotNullOrEmpty()]
        [string] $User,

        [System.Management.Automation.PSCredential]
        [System.Management.Automation.Credential()]
        $Credential = [System.Management.Automation.PSCredential]::Empty,

        [ValidateNotNullOrEmpty()]
        [string] $Executable,

        [switch] $NoMonitorTask
    )

    # A deployment stops at its first failing step (unless the caller chose another -ErrorAction): the failure is
    # caught below and reported as this command's error, so it honours the caller's -ErrorAction and does not end
    # the calling script by itself.
    $errorAction = if ($PSBoundParameters.ContainsKey('ErrorAction')) { $ErrorActionPreference } else { 'Stop' }
    try {
        $common = BmadCommonParameters -Bound $PSBoundParameters -ErrorActionValue $errorAction
        $whatIf = [bool]$WhatIfPreference
        $storeArgs = @{}
        if ($Store) { $storeArgs['Store'] = $Store }
        # Each step is written as soon as it is done (and to the verbose stream), so a run that stops at a failing step
        # still shows what it did before.

        # 1. Create or adopt the store.
        $storePath = if ($Store) { $PSCmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Store) } else { $null }
        $existing = $storePath -and (Test-Path -LiteralPath ([System.IO.Path]::Combine($storePath, 'bmadguard.store.json')))
        if ($existing) {
            (BmadStep 'Store' 'Unchanged' "Adopted the existing store $storePath.")
        }
        else {
            $newArgs = @{}
            if ($Store) { $newArgs['Path'] = $Store }
            $created = New-BmadStore @newArgs @common
            if ($created) {
                $storePath = $created.Path
                (BmadStep 'Store' $(if ($created.Created) { 'Done' } else { 'Unchanged' }) "Store at $($created.Path).")
            }
            else {
                (BmadStep 'Store' 'WouldDo' "Create the store $Store.")
            }
        }
        $storeReady = -not $whatIf -or $existing

        # 2. Import the legacy bus file (Import-BmadLegacyBus, when this build has it; importing is idempotent).
        if ($LegacyBusPath) {
            $import = Get-Command -Name Import-BmadLegacyBus -ErrorAction SilentlyContinue
            if (-not $import) {
                (BmadStep 'LegacyImport' 'Skipped' "Import-BmadLegacyBus is not available in this build: $LegacyBusPath was not imported (the monitor still guards it).")
            }
            elseif (-not $storeReady) {
                (BmadStep 'LegacyImport' 'WouldDo' "Import $LegacyBusPath into the store.")
            }
            elseif (-not ($fileParameter = @('Path', 'LiteralPath', 'File') | Where-Object { $import.Parameters.ContainsKey($_) } | Select-Object -First 1)) {
                (BmadStep 'LegacyImport' 'Skipped' "Import-BmadLegacyBus has no -Path, -LiteralPath or -File parameter: $LegacyBusPath was not imported.")
            }
            else {
                $importArgs = @{ $fileParameter = $LegacyBusPath }
                if ($import.Parameters.ContainsKey('Store') -and $storePath) { $importArgs['Store'] = $storePath }
                $imported = @(& $import @importArgs @common)
                # Importing again adds nothing (events already present are recognised): that run changed nothing.
                $new = @($imported | Where-Object { $null -ne $_.PSObject.Properties['Imported'] } | ForEach-Object { [long]$_.Imported })
                $newCount = ($new | Measure-Object -Sum).Sum
                $importStatus = if ($whatIf) { 'WouldDo' } elseif ($new.Count -gt 0 -and $newCount -eq 0) { 'Unchanged' } else { 'Done' }
                $importDetail = if ($new.Count -gt 0) { "Imported $LegacyBusPath`: $newCount new event(s)." } else { "Imported $LegacyBusPath." }
                (BmadStep 'LegacyImport' $importStatus $importDetail)
            }
        }

        # 3. The first backup, read back and verified (skipped when the store already has a verified backup: later
        #    ones are the monitor's scheduled backups, so running the installer again changes nothing).
        if (-not $storeReady) {
            (BmadStep 'Backup' 'WouldDo' 'Take and verify the first backup.')
        }
        else {
            $located = @{ Store = $storePath }
            $current = Get-BmadBackup @located -ErrorAction SilentlyContinue |
                Where-Object { $_.State -eq 'Verified' -and $_.Kind -eq 'backup' } |
                Select-Object -First 1  # Get-BmadBackup lists newest first
            if ($current) {
                (BmadStep 'Backup' 'Unchanged' "The store has a verified backup: $($current.Name) (up to seq $($current.LastSeq)).")
            }
            else {
                $backupArgs = @{ Store = $storePath }
                if ($BackupDestination) { $backupArgs['Destination'] = $BackupDestination }
                $backup = Backup-BmadStore @backupArgs @common
                if ($backup) {
                    $verified = Get-BmadBackup @located -Name $backup.Name -Deep -ErrorAction Stop
                    if ($verified.State -ne 'Verified') {
                        throw "The first backup $($backup.Name) did not verify: $($verified.Reason)"
                    }
                    (BmadStep 'Backup' 'Done' "Backup $($backup.Name): $($backup.EventCount) event(s), verified (deep).")
                }
                else {
                    (BmadStep 'Backup' 'WouldDo' 'Take and verify the first backup.')
                }
            }
        }

        # 4. The monitor and alert configuration next to the store.
        $configPath = if ($storePath) { [System.IO.Path]::Combine($storePath, 'bmadguard.monitor.json') } else { 'bmadguard.monitor.json' }
        $files = @()
        if ($LegacyBusPath) { $files += $PSCmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath($LegacyBusPath) }
        $intervalText = BmadFormatDuration $Interval
    $backupIntervalText = BmadFormatDuration $BackupInterval
    $document = BmadMonitorConfigDocument -Interval $intervalText -OnDamage $OnDamage -BackupInterval $backupIntervalText -Files $files -SlackWebhook $SlackWebhook -Webhook $Webhook -NoMonitor:$NoMonitorTask
        $installed = if (Test-Path -LiteralPath $configPath) { [System.IO.File]::ReadAllText($configPath) } else { $null }
        if ($installed -eq $document) {
            (BmadStep 'Configuration' 'Unchanged' "$configPath is up to date.")
        }
        elseif ($PSCmdlet.ShouldProcess($configPath, 'Write the monitor and alert configuration')) {
            [System.IO.File]::WriteAllText($configPath, $document, [System.Text.UTF8Encoding]::new($false))
            (BmadStep 'Configuration' 'Done' "Wrote $configPath (interval $intervalText, on damage $OnDamage, backups every $backupIntervalText).")
        }
        else {
            (BmadStep 'Configuration' 'WouldDo' "Write $configPath.")
        }

        # 5. The monitor as a scheduled task / service, with the store path explicit.
        if ($NoMonitorTask) {
            (BmadStep 'MonitorTask' 'Skipped' 'No monitor task registered (-NoMonitorTask).')
        }
        else {
            $taskArgs = @{ Scope = $Scope }
            if ($storePath) { $taskArgs['Store'] = $storePath } elseif ($Store) { $taskArgs['Store'] = $Store }
            if ($User) { $taskArgs['User'] = $User }
            if ($Credential -ne [System.Management.Automation.PSCredential]::Empty) { $taskArgs['Credential'] = $Credential }
            if ($Executable) { $taskArgs['Executable'] = $Executable }
            $task = Register-BmadMonitorTask @taskArgs @common
            $status = 'Done'
            if ($task.Status -eq 'Unchanged') { $status = 'Unchanged' }
            elseif ($task.Status -eq 'WouldRegister') { $status = 'WouldDo' }
            (BmadStep 'MonitorTask' $status "$($task.Platform) $($task.Name) ($($task.InstallPath)).")
        }

        # 6. The health check (read-only; no alert from an installer).
        if ($storeReady) {
            # The health check is read-only (its probe writes no event), so an installer run again changes nothing.
            $health = Invoke-BmadHealthCheck -Store $storePath -ErrorAction Continue -WhatIf:$false -Confirm:$false
            $healthStatus = if ($health.Status -eq 'Unhealthy') { 'Failed' } else { 'Done' }
            (BmadStep 'HealthCheck' $healthStatus "The store is $($health.Status).")
        }
        else {
            (BmadStep 'HealthCheck' 'WouldDo' 'Run the health check.')
        }
    }
    catch {
        $PSCmdlet.WriteError($_)
    }
}
