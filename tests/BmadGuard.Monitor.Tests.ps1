# Pester 5 tests of the monitoring cmdlets: Start-BmadMonitor, Get-BmadMonitor, Send-BmadAlert, Get-BmadHealth,
# Get-BmadMonitorTaskDefinition. They import the BUILT module (output/BmadGuard); stores live under $TestDrive;
# the webhook receiver listens on 127.0.0.1 only. Run with: ./build.ps1 -Task Test (PowerShell 7.4+ and Pester 5).

BeforeAll {
    # The built module (build.ps1 -Task Pester names it in BMADGUARD_MODULE_PATH), else output/BmadGuard.
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop

    $script:SavedStoreVariable = $env:BMADGUARD_STORE
    $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'default-store')

    $script:StoreNumber = 0
    function New-TestStore {
        param([int] $Events = 1)
        $script:StoreNumber++
        $path = [System.IO.Path]::Combine($TestDrive, "store$($script:StoreNumber)")
        $null = New-BmadStore -Path $path
        $null = 1..$Events | ForEach-Object { @{ Type = 'story.created'; Data = @{ n = $_ } } } | Publish-BmadEvent -Store $path
        $path
    }

    function Get-Fqid([string] $ErrorId, [string] $CommandClass) {
        "$ErrorId,BmadGuard.Commands.$CommandClass"
    }

    # The running PowerShell as a command line: its executable, or `dotnet <PSHOME>/pwsh.dll` when PowerShell runs
    # as a .NET tool (its process is dotnet then).
    function Get-PowerShellCommand {
        $exe = (Get-Process -Id $PID).Path
        if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') {
            return @($exe, [System.IO.Path]::Combine($PSHOME, 'pwsh.dll'))
        }
        @($exe)
    }

    # A webhook receiver on 127.0.0.1 that records every request body.
    function Start-Receiver {
        param([int] $Status = 200)
        $listener = [System.Net.HttpListener]::new()
        $port = Get-Random -Minimum 20000 -Maximum 60000
        $listener.Prefixes.Add("http://127.0.0.1:$port/")
        $listener.Start()
        $bodies = [System.Collections.Concurrent.ConcurrentQueue[string]]::new()
        $job = Start-ThreadJob -ScriptBlock {
            param($listener, $bodies, $status)
            while ($listener.IsListening) {
                try { $context = $listener.GetContext() } catch { break }
                $reader = [System.IO.StreamReader]::new($context.Request.InputStream)
                $bodies.Enqueue($reader.ReadToEnd())
                $context.Response.StatusCode = $status
                $context.Response.Close()
            }
        } -ArgumentList $listener, $bodies, $Status
        [pscustomobject]@{ Url = "http://127.0.0.1:$port/hook/SECRET-TOKEN"; Listener = $listener; Bodies = $bodies; Job = $job }
    }

    function Stop-Receiver($Receiver) {
        $Receiver.Listener.Stop()
        $Receiver.Job | Remove-Job -Force
    }
}

AfterAll {
    $env:BMADGUARD_STORE = $script:SavedStoreVariable
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'Start-BmadMonitor' {
    It 'checks once and writes typed events' {
        $store = New-TestStore -Events 3
        $events = @(Start-BmadMonitor -Store $store -Once)
        $events | Should -Not -BeNullOrEmpty
        $events[0] | Should -BeOfType ([BmadGuard.BmadMonitorEvent])
        ($events | Where-Object Event -eq 'Checked').Ok | Should -Contain $true
    }

    It 'repairs a torn tail with -OnDamage Repair and quarantines the bytes' {
        $store = New-TestStore -Events 3
        $segment = Get-ChildItem -Path ([System.IO.Path]::Combine($store, 'segments')) -Filter 'segment-*.jsonl' | Select-Object -First 1
        [System.IO.File]::AppendAllText($segment.FullName, '{"seq":4,"id":"torn')
        $events = @(Start-BmadMonitor -Store $store -Once -OnDamage Repair)
        ($events | Where-Object Event -eq 'DamageDetected') | Should -Not -BeNullOrEmpty
        ($events | Where-Object Event -eq 'Repaired').Ok | Should -Contain $true
        @(Get-ChildItem -Path ([System.IO.Path]::Combine($store, 'quarantine'))).Count | Should -BeGreaterThan 0
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 3
    }

    It 'takes a verified backup when -BackupInterval is due, and stops when the pipeline has what it wants' {
        $store = New-TestStore -Events 2
        @(Get-BmadBackup -Store $store).Count | Should -Be 0
        # A thread job is a new runspace: it imports the module under test itself (it is not on PSModulePath).
        $job = Start-ThreadJob -ScriptBlock {
            param($store, $manifest)
            Import-Module -Name $manifest -ErrorAction Stop
            Start-BmadMonitor -Store $store -Interval '00:00:00.2' -BackupInterval '00:00:01' |
                Where-Object Event -eq 'BackupTaken' |
                Select-Object -First 1
        } -ArgumentList $store, $script:ManifestPath
        $taken = $job | Wait-Job -Timeout 60 | Receive-Job
        $job | Remove-Job -Force
        $taken.Ok | Should -BeTrue
        (Get-BmadBackup -Store $store -Name $taken.Backup).State | Should -Be 'Verified'
        # Select-Object -First stopped the monitor: its lock is free again.
        (Get-BmadMonitor -Store $store).LockHeld | Should -BeFalse
    }

    It 'changes nothing with -WhatIf' {
        $store = New-TestStore
        Start-BmadMonitor -Store $store -Once -WhatIf | Should -BeNullOrEmpty
        Test-Path -LiteralPath ([System.IO.Path]::Combine($store, 'monitor.json')) | Should -BeFalse
    }

    It 'refuses a bad configuration file with StartBmadMonitorInvalidConfiguration' {
        $store = New-TestStore
        $config = [System.IO.Path]::Combine($TestDrive, 'bad.monitor.json')
        Set-Content -LiteralPath $config -Value '{ "interval": "soon" }'
        { Start-BmadMonitor -Store $store -ConfigPath $config -Once -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'StartBmadMonitorInvalidConfiguration' 'StartBmadMonitorCommand')
    }

    It 'refuses a second monitor on the same store with StartBmadMonitorMonitorAlreadyRunning' {
        $store = New-TestStore
        $pwsh = Get-PowerShellCommand
        $first = Start-Process -FilePath $pwsh[0] -PassThru -ArgumentList (@($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-Command',
            "Import-Module '$script:ManifestPath'; Start-BmadMonitor -Store '$store' | Out-Null"))
        try {
            # A wait, not a budget: under load PowerShell and the module take a while to start.
            $deadline = [DateTime]::UtcNow.AddSeconds(120)
            while (-not (Get-BmadMonitor -Store $store).Alive -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 200 }
            (Get-BmadMonitor -Store $store).Alive | Should -BeTrue
            { Start-BmadMonitor -Store $store -ErrorAction Stop } |
                Should -Throw -ErrorId (Get-Fqid 'StartBmadMonitorMonitorAlreadyRunning' 'StartBmadMonitorCommand')
        }
        finally {
            Stop-Process -Id $first.Id -Force
            # Stop-Process sends the kill and returns: the OS frees the lock when the process has exited.
            $null = $first.WaitForExit(30000)
        }
        # The lock is the OS's: killing the monitor frees it at once.
        (Get-BmadMonitor -Store $store).LockHeld | Should -BeFalse
    }
}

Describe 'Get-BmadMonitor' {
    It 'says no monitor runs on a fresh store' {
        $status = Get-BmadMonitor -Store (New-TestStore)
        $status | Should -BeOfType ([BmadGuard.BmadMonitorStatus])
        $status.Alive | Should -BeFalse
    }

    It 'shows the last check after a monitor pass' {
        $store = New-TestStore
        $null = Start-BmadMonitor -Store $store -Once
        (Get-BmadMonitor -Store $store).Pid | Should -Be $PID
    }

    It 'reports a missing store as GetBmadMonitorStoreNotFound' {
        { Get-BmadMonitor -Store ([System.IO.Path]::Combine($TestDrive, 'nothing')) -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'GetBmadMonitorStoreNotFound' 'GetBmadMonitorCommand')
    }
}

Describe 'Send-BmadAlert' {
    It 'delivers a test alert to a webhook and never shows its secret' {
        $store = New-TestStore
        $receiver = Start-Receiver
        try {
            $results = @(Send-BmadAlert -Test -Store $store -Webhook $receiver.Url -Confirm:$false)
            ($results | Where-Object Channel -like 'webhook*').Delivered | Should -BeTrue
            ($results | Out-String) | Should -Not -Match 'SECRET-TOKEN'
            $receiver.Bodies.Count | Should -Be 1
        }
        finally {
            Stop-Receiver $receiver
        }
    }

    It 'reports a failing channel as SendBmadAlertDeliveryFailed and still writes its result' {
        $store = New-TestStore
        $receiver = Start-Receiver -Status 500
        try {
            $results = @(Send-BmadAlert 'disk almost full' -Severity Error -Store $store -Webhook $receiver.Url -ErrorVariable failures -ErrorAction SilentlyContinue)
            ($results | Where-Object Channel -like 'webhook*').Delivered | Should -BeFalse
            $failures[0].FullyQualifiedErrorId | Should -Be (Get-Fqid 'SendBmadAlertDeliveryFailed' 'SendBmadAlertCommand')
            ($failures | Out-String) | Should -Not -Match 'SECRET-TOKEN'
        }
        finally {
            Stop-Receiver $receiver
        }
    }

    It 'sends nothing with -WhatIf' {
        $store = New-TestStore
        $receiver = Start-Receiver
        try {
            Send-BmadAlert -Test -Store $store -Webhook $receiver.Url -WhatIf | Should -BeNullOrEmpty
            $receiver.Bodies.Count | Should -Be 0
        }
        finally {
            Stop-Receiver $receiver
        }
    }

    It 'reports no configured channel as SendBmadAlertInvalidConfiguration' {
        { Send-BmadAlert -Test -Store (New-TestStore) -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'SendBmadAlertInvalidConfiguration' 'SendBmadAlertCommand')
    }
}

Describe 'Get-BmadHealth' {
    It 'reports every check, degraded without a backup and healthier with one' {
        $store = New-TestStore -Events 2
        $report = Get-BmadHealth -Store $store -NoProbe
        $report | Should -BeOfType ([BmadGuard.BmadHealthReport])
        $report.Checks.Name | Should -Contain 'integrity'
        ($report.Checks | Where-Object Name -eq 'backup').Status | Should -Not -Be 'Healthy'
        $null = Backup-BmadStore -Store $store
        ((Get-BmadHealth -Store $store -NoProbe).Checks | Where-Object Name -eq 'backup').Status | Should -Be 'Healthy'
    }

    It 'publishes no probe event with -NoProbe' {
        $store = New-TestStore -Events 1
        $null = Get-BmadHealth -Store $store -NoProbe
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 1
    }
}

Describe 'Get-BmadMonitorTaskDefinition' {
    It 'renders a <Platform> definition with the explicit store' -ForEach @(
        @{ Platform = 'Systemd'; Expected = '--store' }
        @{ Platform = 'Launchd'; Expected = '<string>--store</string>' }
        @{ Platform = 'TaskScheduler'; Expected = '--store' }
    ) {
        $store = New-TestStore
        $definition = Get-BmadMonitorTaskDefinition -Store $store -Platform $Platform -Executable '/usr/local/bin/bmadguard'
        $definition.Content | Should -Match ([regex]::Escape($Expected))
        $definition.Store | Should -Be $store
        $definition.Arguments | Should -Contain $store
    }
}
