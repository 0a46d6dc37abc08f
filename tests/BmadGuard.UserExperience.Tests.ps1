# Pester 5 tests of what a PowerShell user meets (issue 11): health checks change nothing, one health model for both
# front ends, the monitor task without the CLI on PATH, errors that respect -ErrorAction, Export-BmadEvent over an
# existing file, exceptions caught by type, durations, Test-BmadIntegrity -Quiet. They import the BUILT module.
# The CLI (for `bmadguard health`) is $env:BMADGUARD_CLI (a bmadguard executable or bmadguard.dll), else the
# Release build under src/BmadGuard.Cli/bin; the tests that need it are skipped without it.

BeforeDiscovery {
    $script:CliPath = if ($env:BMADGUARD_CLI) { $env:BMADGUARD_CLI } else {
        Get-ChildItem -Path ([System.IO.Path]::Combine($PSScriptRoot, '..', 'src', 'BmadGuard.Cli', 'bin', 'Release')) -Recurse -Filter 'bmadguard.dll' -ErrorAction SilentlyContinue |
            Sort-Object -Property LastWriteTimeUtc -Descending | Select-Object -First 1 -ExpandProperty FullName
    }
    $script:NoCli = -not $script:CliPath
}

BeforeAll {
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop

    $script:CliPath = if ($env:BMADGUARD_CLI) { $env:BMADGUARD_CLI } else {
        Get-ChildItem -Path ([System.IO.Path]::Combine($PSScriptRoot, '..', 'src', 'BmadGuard.Cli', 'bin', 'Release')) -Recurse -Filter 'bmadguard.dll' -ErrorAction SilentlyContinue |
            Sort-Object -Property LastWriteTimeUtc -Descending | Select-Object -First 1 -ExpandProperty FullName
    }
    function Invoke-Cli {
        if ($script:CliPath -like '*.dll') { & dotnet $script:CliPath @args } else { & $script:CliPath @args }
    }

    $script:SavedStoreVariable = $env:BMADGUARD_STORE
    $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'default-store')

    $script:StoreNumber = 0
    function New-TestStore {
        param([int] $Events = 3)
        $script:StoreNumber++
        $path = [System.IO.Path]::Combine($TestDrive, "ux$($script:StoreNumber)")
        $null = New-BmadStore -Path $path
        $null = 1..$Events | ForEach-Object { @{ Type = 'story.created'; Data = @{ n = $_ } } } | Publish-BmadEvent -Store $path
        $path
    }

    # The running PowerShell as a command line: its executable, or `dotnet <PSHOME>/pwsh.dll` when PowerShell runs
    # as a .NET tool (its process is dotnet then).
    function Invoke-ChildPowerShell([string] $Script) {
        $exe = (Get-Process -Id $PID).Path
        $prefix = @()
        if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = @([System.IO.Path]::Combine($PSHOME, 'pwsh.dll')) }
        & $exe @prefix -NoProfile -NonInteractive -Command $Script 2>&1
    }

    # Every file of the store with its bytes' hash (the lock file included): what "changed nothing" means.
    function Get-StoreFingerprint([string] $Path) {
        Get-ChildItem -LiteralPath $Path -Recurse -File | Sort-Object -Property FullName | ForEach-Object {
            "$($_.FullName.Substring($Path.Length)) $((Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash)"
        }
    }
}

AfterAll {
    $env:BMADGUARD_STORE = $script:SavedStoreVariable
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'A health check changes nothing it checks' {
    It '<Name> writes no event and changes no file of the store' -ForEach @(
        @{ Name = 'Get-BmadHealth'; Run = { param($s) $null = Get-BmadHealth -Store $s } }
        @{ Name = 'Invoke-BmadHealthCheck'; Run = { param($s) $null = Invoke-BmadHealthCheck -Store $s } }
        @{ Name = 'Invoke-BmadHealthCheck -WhatIf'; Run = { param($s) $null = Invoke-BmadHealthCheck -Store $s -WhatIf } }
        @{ Name = 'Invoke-BmadHealthCheck -Alert -WhatIf'; Run = { param($s) $null = Invoke-BmadHealthCheck -Store $s -Alert -WhatIf } }
    ) {
        $store = New-TestStore -Events 3
        # A consumer that has read everything: a probe event would be new to it.
        $null = Get-BmadEvent -Store $store -Consumer 'reviewer'
        $before = Get-StoreFingerprint $store
        & $Run $store
        Get-StoreFingerprint $store | Should -Be $before
        @(Get-BmadEvent -Store $store).Count | Should -Be 3
        @(Get-BmadEvent -Store $store -Consumer 'reviewer').Count | Should -Be 0
    }

    It 'bmadguard health writes no event and changes no file of the store' -Skip:$script:NoCli {
        $store = New-TestStore -Events 3
        $before = Get-StoreFingerprint $store
        $json = (Invoke-Cli health --store $store) -join "`n" | ConvertFrom-Json
        ($json.checks | Where-Object name -EQ 'probe').status | Should -Be 'Healthy'
        Get-StoreFingerprint $store | Should -Be $before
        @(Get-BmadEvent -Store $store).Count | Should -Be 3
    }

    It 'still proves the write path: a read-only store directory makes the probe fail' -Skip:($IsWindows -or (& id -u) -eq '0') {
        $store = New-TestStore -Events 1
        try {
            [System.IO.File]::SetUnixFileMode($store, [System.IO.UnixFileMode]'UserRead, UserExecute')
            $probe = (Get-BmadHealth -Store $store).Checks | Where-Object Name -EQ 'probe'
            $probe.Status | Should -Be 'Unhealthy'
        }
        finally {
            [System.IO.File]::SetUnixFileMode($store, [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
        }
    }

    It 'writes nothing next to a damaged store: the probe is skipped' {
        $store = New-TestStore -Events 5
        $segment = Get-ChildItem -LiteralPath ([System.IO.Path]::Combine($store, 'segments')) -File | Select-Object -First 1
        $bytes = [System.IO.File]::ReadAllBytes($segment.FullName)
        $bytes[[int]($bytes.Length / 2)] = $bytes[[int]($bytes.Length / 2)] -bxor 0x20
        [System.IO.File]::WriteAllBytes($segment.FullName, $bytes)
        $before = Get-StoreFingerprint $store
        $report = Get-BmadHealth -Store $store
        $report.Status | Should -Be 'Unhealthy'
        ($report.Checks | Where-Object Name -EQ 'probe').Evidence['skipped'] | Should -BeTrue
        Get-StoreFingerprint $store | Should -Be $before
    }
}

Describe 'One health model, rendered by both front ends' {
    It 'Invoke-BmadHealthCheck and bmadguard health report the same checks and status for one store' -Skip:$script:NoCli {
        $store = New-TestStore -Events 2
        $psReport = Invoke-BmadHealthCheck -Store $store
        $exit = $LASTEXITCODE
        $json = (Invoke-Cli health --store $store) -join "`n" | ConvertFrom-Json
        $cliExit = $LASTEXITCODE
        $psReport.Status | Should -Be $json.status
        $exit | Should -Be $cliExit
        @($psReport.Checks | ForEach-Object { "$($_.Name)=$($_.Status)" }) | Should -Be @($json.checks | ForEach-Object { "$($_.name)=$($_.status)" })
    }

    It 'reports the monitor once' {
        $store = New-TestStore -Events 1
        $names = @((Invoke-BmadHealthCheck -Store $store).Checks.Name)
        @($names | Where-Object { $_ -like 'monitor*' }) | Should -Be @('monitor')
    }

    It 'leaves $LASTEXITCODE 0 after a successful Install-BmadGuard -NoMonitorTask' {
        $store = [System.IO.Path]::Combine($TestDrive, 'installed-no-monitor')
        $steps = Install-BmadGuard -Store $store -NoMonitorTask -Confirm:$false
        ($steps | Where-Object Step -EQ 'HealthCheck').Detail | Should -Be 'The store is Healthy.'
        $LASTEXITCODE | Should -Be 0
    }
}

Describe 'The monitor task without the bmadguard CLI' {
    BeforeAll {
        # A PATH without any bmadguard on it, as on a machine that has only the module.
        $script:SavedPath = $env:PATH
        $env:PATH = [System.IO.Path]::Combine($TestDrive, 'empty-bin')
    }
    AfterAll {
        $env:PATH = $script:SavedPath
    }

    It 'renders a unit that runs PowerShell with the module and Start-BmadMonitor' {
        $store = New-TestStore -Events 1
        $definition = Get-BmadMonitorTaskDefinition -Store $store -Platform Systemd
        $definition.Content | Should -Match 'Import-Module'
        $definition.Content | Should -Match 'Start-BmadMonitor -Store'
        $definition.Content | Should -Match ([regex]::Escape('BmadGuard.psd1'))
        $definition.Executable | Should -Be (Get-Process -Id $PID).Path
        $definition.Arguments | Should -Contain '-NoProfile'
    }

    It 'Register-BmadMonitorTask -WhatIf and Install-BmadGuard -WhatIf work' {
        $store = New-TestStore -Events 1
        (Register-BmadMonitorTask -Store $store -Platform Systemd -WhatIf).Status | Should -Be 'WouldRegister'
        $steps = Install-BmadGuard -Store ([System.IO.Path]::Combine($TestDrive, 'whatif-install')) -WhatIf
        ($steps | Where-Object Step -EQ 'MonitorTask').Status | Should -Be 'WouldDo'
    }

    It 'a failing Register-BmadMonitorTask honours -ErrorAction Continue: the calling script goes on' {
        $module = $script:ManifestPath
        $script = "Import-Module '$module'; Register-BmadMonitorTask -Store ('/tmp/a' + [char]10 + 'b') -Platform Systemd -WhatIf -ErrorAction Continue; 'reached the next line'"
        $out = Invoke-ChildPowerShell $script
        ($out | Where-Object { $_ -is [string] }) | Should -Contain 'reached the next line'
        @($out | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] }).Count | Should -BeGreaterThan 0
    }

    It 'a failing Register-BmadMonitorTask is a catchable, non-terminating error with -ErrorAction SilentlyContinue' {
        $errors = $null
        $null = Register-BmadMonitorTask -Store ('/tmp/a' + [char]10 + 'b') -Platform Systemd -WhatIf -ErrorAction SilentlyContinue -ErrorVariable errors
        @($errors).Count | Should -BeGreaterThan 0
        @($errors)[0].FullyQualifiedErrorId | Should -BeLike 'GetBmadMonitorTaskDefinitionInvalidArgument*'
    }
}

Describe 'The systemd unit text' {
    It 'tells a user unit about loginctl enable-linger, and writes a $ in Environment= as systemd reads it' {
        $store = [System.IO.Path]::Combine($TestDrive, 'cost$5')
        $null = New-BmadStore -Path $store
        $unit = (Get-BmadMonitorTaskDefinition -Store $store -Platform Systemd -Executable '/usr/bin/bmadguard').Content
        $unit | Should -Match 'loginctl enable-linger'
        # Environment= does no variable expansion (systemd.exec(5)): a $ stays one $.
        $unit | Should -Match ([regex]::Escape("Environment=`"BMADGUARD_STORE=$store`""))
        # ExecStart= expands $VAR: a literal $ is written $$ there.
        $unit | Should -Match ([regex]::Escape($store.Replace('$', '$$')))
        $system = (Get-BmadMonitorTaskDefinition -Store $store -Platform Systemd -Scope System -User 'bmad' -Executable '/usr/bin/bmadguard').Content
        $system | Should -Not -Match 'enable-linger'
    }
}

Describe 'Export-BmadEvent over an existing file' {
    BeforeAll {
        $script:ExportStore = New-TestStore -Events 4
    }

    It 'refuses with -NoClobber (ExportBmadEventFileExists) and keeps the file' {
        $file = [System.IO.Path]::Combine($TestDrive, 'noclobber.json')
        Set-Content -LiteralPath $file -Value 'precious' -NoNewline
        { Export-BmadEvent -Path $file -Store $script:ExportStore -NoClobber -ErrorAction Stop } |
            Should -Throw -ErrorId 'ExportBmadEventFileExists,BmadGuard.Commands.ExportBmadEventCommand'
        Get-Content -Raw -LiteralPath $file | Should -Be 'precious'
    }

    It 'does not replace it silently in a session that cannot ask: an error naming -Force' {
        $file = [System.IO.Path]::Combine($TestDrive, 'kept.json')
        Set-Content -LiteralPath $file -Value 'precious' -NoNewline
        $out = Invoke-ChildPowerShell "Import-Module '$($script:ManifestPath)'; Export-BmadEvent -Path '$file' -Store '$($script:ExportStore)'"
        ($out | Out-String) | Should -Match '-Force'
        Get-Content -Raw -LiteralPath $file | Should -Be 'precious'
    }

    It 'replaces it with -Force; -WhatIf changes nothing' {
        $file = [System.IO.Path]::Combine($TestDrive, 'forced.json')
        Set-Content -LiteralPath $file -Value 'old' -NoNewline
        $null = Export-BmadEvent -Path $file -Store $script:ExportStore -Force -WhatIf
        Get-Content -Raw -LiteralPath $file | Should -Be 'old'
        (Export-BmadEvent -Path $file -Store $script:ExportStore -Force).EventCount | Should -Be 4
        (Get-Content -Raw -LiteralPath $file | ConvertFrom-Json).events.Count | Should -Be 4
    }

    It 'writes a new file without asking' {
        $file = [System.IO.Path]::Combine($TestDrive, 'new.json')
        (Export-BmadEvent -Path $file -Store $script:ExportStore).EventCount | Should -Be 4
    }
}

Describe 'Errors caught by type' {
    It 'catch [BmadGuard.BmadGuardException] catches a cmdlet failure, with its code and ErrorId' {
        $missing = [System.IO.Path]::Combine($TestDrive, 'no-such-store')
        $caught = $null
        try {
            Get-BmadEvent -Store $missing -ErrorAction Stop
        }
        catch [BmadGuard.BmadGuardException] {
            $caught = $_
        }
        $caught | Should -Not -BeNullOrEmpty
        $caught.Exception.Code | Should -Be 'StoreNotFound'
        $caught.FullyQualifiedErrorId | Should -BeLike 'GetBmadEventStoreNotFound,*'
    }

    It 'a script that catches by type runs its catch block and does not exit 0 past it' {
        $missing = [System.IO.Path]::Combine($TestDrive, 'no-such-store-2')
        $script = "Import-Module '$($script:ManifestPath)'; try { Get-BmadEvent -Store '$missing' -ErrorAction Stop } catch [BmadGuard.BmadGuardException] { 'caught ' + `$_.Exception.Code; exit 3 }; 'not caught'"
        $out = Invoke-ChildPowerShell $script
        $LASTEXITCODE | Should -Be 3
        $out | Should -Contain 'caught StoreNotFound'
    }
}

Describe 'One duration type' {
    It 'Start-BmadMonitor -Interval takes <Text>' -ForEach @(
        @{ Text = "the bare word 5s"; Value = { 5s }; Expected = [TimeSpan]::FromSeconds(5) }
        @{ Text = "'500ms'"; Value = { '500ms' }; Expected = [TimeSpan]::FromMilliseconds(500) }
        @{ Text = "'1h'"; Value = { '1h' }; Expected = [TimeSpan]::FromHours(1) }
        @{ Text = 'the number 2 (seconds)'; Value = { 2 }; Expected = [TimeSpan]::FromSeconds(2) }
        @{ Text = 'a TimeSpan'; Value = { [TimeSpan]::FromSeconds(3) }; Expected = [TimeSpan]::FromSeconds(3) }
    ) {
        $command = Get-Command -Name Start-BmadMonitor
        $attribute = $command.Parameters['Interval'].Attributes | Where-Object { $_ -is [System.Management.Automation.ArgumentTransformationAttribute] }
        $attribute | Should -Not -BeNullOrEmpty
        $attribute.Transform($ExecutionContext, (& $Value)) | Should -Be $Expected
    }

    It 'Start-BmadMonitor -Interval 5s -BackupInterval 1h -Once runs (the bare words are durations)' {
        $store = New-TestStore -Events 1
        { $null = Start-BmadMonitor -Store $store -Interval 5s -BackupInterval 1h -Once -ErrorAction Stop } | Should -Not -Throw
        $state = Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($store, 'monitor.json')) | ConvertFrom-Json
        $state.intervalMs | Should -Be 5000
    }

    It 'Install-BmadGuard takes a TimeSpan and a number as well as text' {
        $target = [System.IO.Path]::Combine($TestDrive, 'durations-install')
        $null = Install-BmadGuard -Store $target -Interval ([TimeSpan]::FromSeconds(10)) -BackupInterval 7200 -NoMonitorTask -Confirm:$false
        $config = Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($target, 'bmadguard.monitor.json')) | ConvertFrom-Json
        $config.interval | Should -Be '10s'
        $config.backupInterval | Should -Be '2h'
    }

    It 'refuses what is not a duration with a clear message' {
        { Start-BmadMonitor -Store (New-TestStore) -Interval 'soon' -Once -ErrorAction Stop } | Should -Throw '*not a duration*'
    }
}

Describe 'Test-BmadIntegrity -Quiet' {
    It 'returns $false without an error for a missing <What>' -ForEach @(
        @{ What = 'file'; Params = @{ Path = 'missing/shared_context.json' } }
        @{ What = 'store'; Params = @{ Store = 'missing-store' } }
    ) {
        Push-Location -LiteralPath $TestDrive
        try {
            $errors = $null
            $result = Test-BmadIntegrity @Params -Quiet -ErrorVariable errors
            $result | Should -BeFalse
            $result | Should -BeOfType [bool]
            @($errors).Count | Should -Be 0
        }
        finally {
            Pop-Location
        }
    }
}

Describe 'Repair-BmadStore reports what it did' {
    BeforeAll {
        # One byte changed in the middle of the log: the record holding it is lost (a placeholder takes its seq).
        function Set-MidLogDamage([string] $Store) {
            $segment = Get-ChildItem -LiteralPath ([System.IO.Path]::Combine($Store, 'segments')) -File | Sort-Object Name | Select-Object -First 1
            $bytes = [System.IO.File]::ReadAllBytes($segment.FullName)
            $headerEnd = [Array]::IndexOf($bytes, [byte]10)
            $at = $headerEnd + [int](($bytes.Length - $headerEnd) / 2)
            $bytes[$at] = $bytes[$at] -bxor 0x20
            [System.IO.File]::WriteAllBytes($segment.FullName, $bytes)
        }
    }

    It 'counts recovered events without the placeholder, and names the quarantine file and the damage offset' {
        $store = New-TestStore -Events 11
        Set-MidLogDamage $store
        $report = Repair-BmadStore -Store $store -Force
        $report.LostEvents | Should -Be 1
        $report.RecoveredEvents | Should -Be 10
        $report.QuarantinePath | Should -Not -BeNullOrEmpty
        Test-Path -LiteralPath $report.QuarantinePath | Should -BeTrue
        $report.DamageOffset | Should -Not -BeNullOrEmpty
    }

    It 'a legacy file that lost a torn event does not report Lost 0' {
        $dir = [System.IO.Path]::Combine($TestDrive, 'torn-bus')
        $null = New-Item -ItemType Directory -Path $dir
        $file = [System.IO.Path]::Combine($dir, 'shared_context.json')
        $text = '{"events": [{"timestamp": "2025-07-27T00:17:39.983220", "event": "a", "data": {"n": 1}}, {"timestamp": "2025-07-27T00:18:39.983220", "event": "b", "data": {"n": 2}}, {"timestamp": "2025-07-27T00:19:39.983220", "event": "c", "data": '
        [System.IO.File]::WriteAllText($file, $text)
        $report = Repair-BmadStore -Path $file -Force
        $report.RecoveredEvents | Should -Be 2
        $report.LostEvents | Should -BeGreaterThan 0
    }

    It 'asks before repairing: without -Force a session that cannot ask gets an error and the store is untouched; -Force repairs' {
        $store = New-TestStore -Events 5
        Set-MidLogDamage $store
        $before = Get-StoreFingerprint $store
        $out = Invoke-ChildPowerShell "Import-Module '$($script:ManifestPath)'; Repair-BmadStore -Store '$store'"
        ($out | Out-String) | Should -Match '-Force'
        Get-StoreFingerprint $store | Should -Be $before
        $out = Invoke-ChildPowerShell "Import-Module '$($script:ManifestPath)'; (Repair-BmadStore -Store '$store' -Force).Healthy"
        $out | Should -Contain 'True'
    }
}

Describe 'Errors name PowerShell commands' {
    It 'a missing store names New-BmadStore, not the CLI' {
        $missing = [System.IO.Path]::Combine($TestDrive, 'nowhere')
        $message = $null
        try { Get-BmadEvent -Store $missing -ErrorAction Stop } catch { $message = $_.Exception.Message }
        $message | Should -Match 'New-BmadStore'
        $message | Should -Not -Match "'bmadguard [a-z]"
    }

    It 'the CLI names its own command for the same condition' -Skip:$script:NoCli {
        $missing = [System.IO.Path]::Combine($TestDrive, 'nowhere-cli')
        $stderr = Invoke-Cli get --store $missing 2>&1 | Out-String
        $stderr | Should -Match 'bmadguard init'
        $stderr | Should -Not -Match 'New-BmadStore'
    }
}

Describe 'How a store comes to exist' {
    It 'the default store is created on first use by Publish-BmadEvent' {
        $saved = $env:BMADGUARD_STORE
        try {
            $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'first-use', 'store')
            $event = Publish-BmadEvent -Type story.created -Data @{ story = '1.2' }
            $event.Seq | Should -Be 1
            @(Get-BmadEvent).Count | Should -Be 1
        }
        finally {
            $env:BMADGUARD_STORE = $saved
        }
    }

    It 'an explicit -Store that holds no store is an error naming New-BmadStore, and nothing is created' {
        $path = [System.IO.Path]::Combine($TestDrive, 'explicit-missing')
        { Publish-BmadEvent -Store $path -Type story.created -ErrorAction Stop } |
            Should -Throw -ErrorId 'PublishBmadEventStoreNotFound,BmadGuard.Commands.PublishBmadEventCommand'
        try { Publish-BmadEvent -Store $path -Type story.created -ErrorAction Stop } catch { $_.Exception.Message | Should -Match 'New-BmadStore' }
        Test-Path -LiteralPath $path | Should -BeFalse
    }
}

Describe 'Files a person reads' {
    It "settings and consumer files write '+' as '+', not \u002B" {
        $store = New-TestStore -Events 1
        $null = Get-BmadEvent -Store $store -Consumer 'reader'
        foreach ($file in @('bmadguard.store.json', 'consumers/reader.json')) {
            $text = [System.IO.File]::ReadAllText([System.IO.Path]::Combine($store, $file))
            $text | Should -Not -Match ([regex]::Escape('\u002B'))
            $text | Should -Match '\+00:00'
        }
    }
}

Describe 'Tab completion and online help' {
    It '-Store completes directories only, stores first' {
        $root = [System.IO.Path]::Combine($TestDrive, 'completion')
        $null = New-Item -ItemType Directory -Path ([System.IO.Path]::Combine($root, 'plain-dir'))
        $null = New-BmadStore -Path ([System.IO.Path]::Combine($root, 'store-dir'))
        Set-Content -LiteralPath ([System.IO.Path]::Combine($root, 'some-file.json')) -Value '{}'
        Push-Location -LiteralPath $root
        try {
            $line = 'Get-BmadEvent -Store '
            $matches = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches
            @($matches.ListItemText) | Should -Be @('store-dir', 'plain-dir')
        }
        finally {
            Pop-Location
        }
    }

    It '-Consumer completes the consumers of the store' {
        $store = New-TestStore -Events 1
        $null = Get-BmadEvent -Store $store -Consumer 'qa-agent'
        $null = Get-BmadEvent -Store $store -Consumer 'dev-agent'
        $line = "Get-BmadEvent -Store '$store' -Consumer "
        $matches = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches
        @($matches.CompletionText) | Should -Be @('dev-agent', 'qa-agent')
    }

    It 'every command has a HelpUri' {
        foreach ($command in Get-Command -Module BmadGuard) {
            $command.HelpUri | Should -Not -BeNullOrEmpty -Because $command.Name
        }
    }
}
