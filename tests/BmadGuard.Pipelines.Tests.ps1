# Pester 5 tests of the script pipelines in BmadGuard.psm1: Invoke-BmadHealthCheck, Install-BmadGuard,
# Register-BmadMonitorTask, Unregister-BmadMonitorTask. Commands they call are mocked with
# Mock -ModuleName BmadGuard, so each pipeline is tested in isolation; -WhatIf must change nothing.
# Run with: ./build.ps1 -Task Test (PowerShell 7.4+ and Pester 5).

BeforeAll {
    # The built module (build.ps1 -Task Pester names it in BMADGUARD_MODULE_PATH), else output/BmadGuard.
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop

    $script:SavedStoreVariable = $env:BMADGUARD_STORE
    $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'default-store')

    $script:StoreNumber = 0
    function New-TestStorePath {
        $script:StoreNumber++
        [System.IO.Path]::Combine($TestDrive, "store$($script:StoreNumber)")
    }

    function New-FakeCheck([string] $Name, [string] $Status) {
        [pscustomobject]@{ Name = $Name; Status = $Status; Message = "$Name is $Status"; Evidence = @{} }
    }

    function New-FakeHealth([string] $Status, [object[]] $Checks) {
        $code = switch ($Status) { 'Healthy' { 0 } 'Degraded' { 1 } default { 2 } }
        [pscustomobject]@{ Store = '/fake/store'; Status = $Status; ExitCode = $code; Checks = $Checks; Time = [DateTimeOffset]::UtcNow; Duration = [TimeSpan]::FromMilliseconds(12) }
    }
}

AfterAll {
    $env:BMADGUARD_STORE = $script:SavedStoreVariable
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'Invoke-BmadHealthCheck' {
    BeforeEach {
        Mock -ModuleName BmadGuard Get-BmadBackup { @() }
        Mock -ModuleName BmadGuard Get-BmadMonitor { [pscustomobject]@{ Alive = $true; Pid = 42; LastAction = $null; Summary = 'running' } }
        Mock -ModuleName BmadGuard Send-BmadAlert { [pscustomobject]@{ Channel = 'webhook'; Delivered = $true } }
    }

    It 'is Healthy with exit code 0 when every check is' {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth 'Healthy' @((New-FakeCheck 'integrity' 'Healthy'), (New-FakeCheck 'backup' 'Healthy')) }
        $report = Invoke-BmadHealthCheck -Store '/fake/store'
        $report.Status | Should -Be 'Healthy'
        $report.ExitCode | Should -Be 0
        $LASTEXITCODE | Should -Be 0
        Should -Invoke -ModuleName BmadGuard Send-BmadAlert -Times 0
    }

    It 'takes the worst check: <Worst> gives exit code <Code>' -ForEach @(
        @{ Worst = 'Degraded'; Code = 1 }
        @{ Worst = 'Unhealthy'; Code = 2 }
    ) {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth $Worst @((New-FakeCheck 'integrity' 'Healthy'), (New-FakeCheck 'disk' $Worst)) }
        $report = Invoke-BmadHealthCheck -Store '/fake/store'
        $report.Status | Should -Be $Worst
        $report.ExitCode | Should -Be $Code
        $LASTEXITCODE | Should -Be $Code
    }

    It "renders Core's report as it is: no check added, the status not recomputed (one health model)" {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth 'Degraded' @((New-FakeCheck 'backup-catalog' 'Degraded'), (New-FakeCheck 'monitor' 'Degraded')) }
        $report = Invoke-BmadHealthCheck -Store '/fake/store'
        $report.Status | Should -Be 'Degraded'
        @($report.Checks.Name) | Should -Be @('backup-catalog', 'monitor')
        Should -Invoke -ModuleName BmadGuard Get-BmadBackup -Times 0
        Should -Invoke -ModuleName BmadGuard Get-BmadMonitor -Times 0
    }

    It 'alerts through Send-BmadAlert with -Alert when not healthy, passing -ErrorAction on' {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth 'Unhealthy' @(New-FakeCheck 'integrity' 'Unhealthy') }
        $report = Invoke-BmadHealthCheck -Store '/fake/store' -Alert -ErrorAction SilentlyContinue -Confirm:$false
        $report.AlertSent | Should -BeTrue
        Should -Invoke -ModuleName BmadGuard Send-BmadAlert -Times 1 -ParameterFilter {
            $Severity -eq 'Error' -and $Message -match 'integrity' -and $PesterBoundParameters['ErrorAction'] -eq 'SilentlyContinue'
        }
    }

    It 'sends no alert with -WhatIf' {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth 'Unhealthy' @(New-FakeCheck 'integrity' 'Unhealthy') }
        $report = Invoke-BmadHealthCheck -Store '/fake/store' -Alert -WhatIf
        $report.AlertSent | Should -BeFalse
        Should -Invoke -ModuleName BmadGuard Send-BmadAlert -Times 0
    }

    It 'writes JUnit XML with one failing test case per unhealthy check' {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth 'Degraded' @((New-FakeCheck 'integrity' 'Healthy'), (New-FakeCheck 'backup' 'Degraded')) }
        [xml] $xml = Invoke-BmadHealthCheck -Store '/fake/store' -OutputFormat JUnit
        $xml.testsuites.failures | Should -Be '1'
        @($xml.testsuites.testsuite.testcase).Count | Should -Be 2
        ($xml.testsuites.testsuite.testcase | Where-Object name -eq 'backup').failure.type | Should -Be 'Degraded'
    }

    It 'writes JSON, and the object too with -PassThru' {
        Mock -ModuleName BmadGuard Get-BmadHealth { New-FakeHealth 'Healthy' @(New-FakeCheck 'integrity' 'Healthy') }
        $output = @(Invoke-BmadHealthCheck -Store '/fake/store' -OutputFormat Json -PassThru)
        $output.Count | Should -Be 2
        ($output[0] | ConvertFrom-Json).status | Should -Be 'Healthy'
        $output[1].ExitCode | Should -Be 0
    }
}

Describe 'Install-BmadGuard' {
    BeforeEach {
        Mock -ModuleName BmadGuard Register-BmadMonitorTask {
            [pscustomobject]@{ Platform = 'Systemd'; Name = 'bmadguard-monitor-x.service'; InstallPath = '/x'; Store = $Store; Status = $(if ($PesterBoundParameters['WhatIf']) { 'WouldRegister' } else { 'Registered' }) }
        }
        Mock -ModuleName BmadGuard Invoke-BmadHealthCheck { [pscustomobject]@{ Status = 'Healthy'; ExitCode = 0 } }
    }

    It 'creates the store, backs it up and verifies it, writes the configuration, registers the task and checks health' {
        $target = New-TestStorePath
        $steps = Install-BmadGuard -Store $target -Interval '10s' -OnDamage Restore -Confirm:$false
        ($steps | Where-Object Step -eq 'Store').Status | Should -Be 'Done'
        ($steps | Where-Object Step -eq 'Backup').Status | Should -Be 'Done'
        ($steps | Where-Object Step -eq 'Configuration').Status | Should -Be 'Done'
        ($steps | Where-Object Step -eq 'MonitorTask').Status | Should -Be 'Done'
        ($steps | Where-Object Step -eq 'HealthCheck').Status | Should -Be 'Done'
        $config = Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($target, 'bmadguard.monitor.json')) | ConvertFrom-Json
        $config.interval | Should -Be '10s'
        $config.onDamage | Should -Be 'restore'
        @(Get-BmadBackup -Store $target | Where-Object State -eq 'Verified').Count | Should -Be 1
        Should -Invoke -ModuleName BmadGuard Register-BmadMonitorTask -Times 1 -ParameterFilter { $Store -eq $target }
    }

    It 'is idempotent: a second run changes nothing' {
        $store = New-TestStorePath
        $null = Install-BmadGuard -Store $store -Confirm:$false
        Mock -ModuleName BmadGuard Register-BmadMonitorTask { [pscustomobject]@{ Platform = 'Systemd'; Name = 'n'; InstallPath = '/x'; Store = $Store; Status = 'Unchanged' } }
        $second = Install-BmadGuard -Store $store -Confirm:$false
        ($second | Where-Object Step -in @('Store', 'Backup', 'Configuration', 'MonitorTask')).Status | Should -Be @('Unchanged', 'Unchanged', 'Unchanged', 'Unchanged')
        @(Get-BmadBackup -Store $store).Count | Should -Be 1
        # The health check is read-only (its probe writes no event), so it runs in full each time.
        Should -Invoke -ModuleName BmadGuard Invoke-BmadHealthCheck -Times 2
    }

    It 'changes nothing with -WhatIf and shows every step' {
        $store = New-TestStorePath
        $steps = Install-BmadGuard -Store $store -LegacyBusPath ([System.IO.Path]::Combine($TestDrive, 'shared_context.json')) -WhatIf
        Test-Path -LiteralPath $store | Should -BeFalse
        ($steps | Where-Object Step -ne 'LegacyImport').Status | Should -Not -Contain 'Done'
        $steps.Step | Should -Contain 'Configuration'
        Should -Invoke -ModuleName BmadGuard Register-BmadMonitorTask -Times 1 -ParameterFilter { $WhatIf -eq $true }
        Should -Invoke -ModuleName BmadGuard Invoke-BmadHealthCheck -Times 0
    }

    It 'imports the legacy bus file through Import-BmadLegacyBus when it exists' {
        Mock -ModuleName BmadGuard Import-BmadLegacyBus { [pscustomobject]@{ Imported = 3; Store = $Store; Path = $Path } }
        $store = New-TestStorePath
        $legacy = [System.IO.Path]::Combine($TestDrive, 'shared_context.json')
        Set-Content -LiteralPath $legacy -Value '{"events":[]}'
        $steps = Install-BmadGuard -Store $store -LegacyBusPath $legacy -NoMonitorTask -Confirm:$false
        ($steps | Where-Object Step -eq 'LegacyImport').Status | Should -Be 'Done'
        ($steps | Where-Object Step -eq 'LegacyImport').Detail | Should -Match ': 3 new event'
        ($steps | Where-Object Step -eq 'MonitorTask').Status | Should -Be 'Skipped'
        Should -Invoke -ModuleName BmadGuard Import-BmadLegacyBus -Times 1 -ParameterFilter { $Path -eq $legacy }
    }

    It 'imports a legacy bus file once: the second run reports every step Unchanged' {
        $store = New-TestStorePath
        $legacy = [System.IO.Path]::Combine($TestDrive, 'bus-twice.json')
        Set-Content -LiteralPath $legacy -Value '{"events":[{"timestamp":"2026-01-01T10:00:00.000001","event":"story.created","data":{"id":"S-1"}},{"timestamp":"2026-01-01T10:00:01.000001","event":"story.done","data":{"id":"S-1"}}]}'
        $first = Install-BmadGuard -Store $store -LegacyBusPath $legacy -NoMonitorTask -Confirm:$false
        ($first | Where-Object Step -eq 'LegacyImport').Detail | Should -Match ': 2 new event'
        $second = Install-BmadGuard -Store $store -LegacyBusPath $legacy -NoMonitorTask -Confirm:$false
        ($second | Where-Object Step -in @('Store', 'LegacyImport', 'Backup', 'Configuration')).Status |
            Should -Be @('Unchanged', 'Unchanged', 'Unchanged', 'Unchanged')
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 2
    }

    It 'stops at a failing step with the error of the command that failed' {
        # Like the binary cmdlet: a non-terminating error that the -ErrorAction it was given (Stop) makes terminating.
        # (A mock's body does not see that -ErrorAction as its preference: $PesterBoundParameters carries it.)
        Mock -ModuleName BmadGuard Backup-BmadStore {
            $ea = $PesterBoundParameters['ErrorAction']
            Write-Error -Message 'disk full' -ErrorId 'BackupBmadStoreStoreFull' -ErrorAction $(if ($null -ne $ea) { $ea } else { 'Continue' })
        }
        # The failure is Install-BmadGuard's own error: it stops the deployment but honours the caller's -ErrorAction
        # (it does not end the calling script by itself).
        $errors = $null
        $written = @(Install-BmadGuard -Store (New-TestStorePath) -Confirm:$false -ErrorVariable errors 2>$null)
        ($errors | Out-String) | Should -Match 'disk full'
        # What was done before the failure is still shown.
        $written.Step | Should -Be @('Store')
        $written.Status | Should -Be @('Done')
        Should -Invoke -ModuleName BmadGuard Register-BmadMonitorTask -Times 0
        { Install-BmadGuard -Store (New-TestStorePath) -Confirm:$false -ErrorAction Stop } | Should -Throw -ExpectedMessage '*disk full*'
    }
}

Describe 'Register-BmadMonitorTask and Unregister-BmadMonitorTask' -Skip:($IsWindows) {
    BeforeEach {
        Mock -ModuleName BmadGuard InvokeBmadServiceManager { @() }
        $script:UnitDir = [System.IO.Path]::Combine($TestDrive, 'home')
    }

    It 'writes the unit with the explicit store, reloads and enables it, and is idempotent' {
        $store = New-TestStorePath
        $null = New-BmadStore -Path $store
        Mock -ModuleName BmadGuard Get-BmadMonitorTaskDefinition {
            [pscustomobject]@{ Platform = 'Systemd'; Name = 'bmadguard-monitor-t.service'; InstallPath = [System.IO.Path]::Combine($script:UnitDir, 'bmadguard-monitor-t.service'); Store = $Store; Content = "ExecStart=`"/bin/bmadguard`" `"monitor`" `"--store`" `"$Store`"`n" }
        }
        (Register-BmadMonitorTask -Store $store -Executable '/bin/bmadguard' -Confirm:$false).Status | Should -Be 'Registered'
        Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($script:UnitDir, 'bmadguard-monitor-t.service')) | Should -Match ([regex]::Escape($store))
        Should -Invoke -ModuleName BmadGuard InvokeBmadServiceManager -ParameterFilter { $ArgumentList -contains 'enable' }
        (Register-BmadMonitorTask -Store $store -Executable '/bin/bmadguard' -Confirm:$false).Status | Should -Be 'Unchanged'

        (Unregister-BmadMonitorTask -Store $store -Confirm:$false).Status | Should -Be 'Unregistered'
        Test-Path -LiteralPath ([System.IO.Path]::Combine($script:UnitDir, 'bmadguard-monitor-t.service')) | Should -BeFalse
        (Unregister-BmadMonitorTask -Store $store -Confirm:$false).Status | Should -Be 'NotRegistered'
    }

    It 'changes nothing with -WhatIf' {
        $store = New-TestStorePath
        Mock -ModuleName BmadGuard Get-BmadMonitorTaskDefinition {
            [pscustomobject]@{ Platform = 'Systemd'; Name = 'w.service'; InstallPath = [System.IO.Path]::Combine($script:UnitDir, 'w.service'); Store = $Store; Content = 'x' }
        }
        (Register-BmadMonitorTask -Store $store -Executable '/bin/bmadguard' -WhatIf).Status | Should -Be 'WouldRegister'
        Test-Path -LiteralPath ([System.IO.Path]::Combine($script:UnitDir, 'w.service')) | Should -BeFalse
        Should -Invoke -ModuleName BmadGuard InvokeBmadServiceManager -Times 0
    }
}
