# Pester 5 tests of the backup cmdlets: Backup-BmadStore, Get-BmadBackup, Restore-BmadStore.
# They import the BUILT module (output/BmadGuard), and every store lives under $TestDrive.
# Run with: ./build.ps1 -Task Test (PowerShell 7.4+ and Pester 5).

BeforeAll {
    # The built module (build.ps1 -Task Pester names it in BMADGUARD_MODULE_PATH), else output/BmadGuard.
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop

    $script:SavedStoreVariable = $env:BMADGUARD_STORE
    $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'default-store')

    $script:StoreNumber = 0
    function New-TestStore {
        param([int] $Events = 0)
        $script:StoreNumber++
        $path = [System.IO.Path]::Combine($TestDrive, "store$($script:StoreNumber)")
        $null = New-BmadStore -Path $path
        if ($Events -gt 0) {
            $null = 1..$Events | ForEach-Object { @{ Type = 'story.created'; Source = 'architect'; Data = @{ n = $_ } } } | Publish-BmadEvent -Store $path
        }
        $path
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

    function Get-Fqid([string] $ErrorId, [string] $CommandClass) {
        "$ErrorId,BmadGuard.Commands.$CommandClass"
    }

    function Get-SegmentHashes([string] $Store) {
        Get-ChildItem -Path ([System.IO.Path]::Combine($Store, 'segments')) -Filter 'segment-*.jsonl' |
            Sort-Object -Property Name |
            ForEach-Object { (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash }
    }
}

AfterAll {
    $env:BMADGUARD_STORE = $script:SavedStoreVariable
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'Backup-BmadStore' {
    It 'takes a verified backup holding every event' {
        $store = New-TestStore -Events 5
        $backup = Backup-BmadStore -Store $store
        $backup | Should -BeOfType ([BmadGuard.BmadBackup])
        $backup.State | Should -Be 'Verified'
        $backup.EventCount | Should -Be 5
        $backup.LastSeq | Should -Be 5
        Test-Path -LiteralPath ([System.IO.Path]::Combine($backup.Path, 'manifest.json')) | Should -BeTrue
    }

    It 'changes nothing with -WhatIf' {
        $store = New-TestStore -Events 2
        Backup-BmadStore -Store $store -WhatIf | Should -BeNullOrEmpty
        Test-Path -LiteralPath ([System.IO.Path]::Combine($store, 'backups')) | Should -BeFalse
    }

    It 'keeps only the last N verified backups with -KeepLast, never the newest' {
        $store = New-TestStore -Events 1
        $null = Backup-BmadStore -Store $store
        $null = Backup-BmadStore -Store $store
        $third = Backup-BmadStore -Store $store -KeepLast 1
        $third.RetentionRemoved.Count | Should -Be 2
        (Get-BmadBackup -Store $store).Name | Should -Be $third.Name
    }

    It 'resolves a relative -Store against the PowerShell location' {
        $store = New-TestStore -Events 1
        Push-Location -Path ([System.IO.Path]::GetDirectoryName($store))
        try {
            (Backup-BmadStore -Store ([System.IO.Path]::GetFileName($store))).State | Should -Be 'Verified'
        }
        finally {
            Pop-Location
        }
    }

    It 'reports a missing store as <ErrorId>' -ForEach @(
        @{ ErrorId = 'BackupBmadStoreStoreNotFound' }
    ) {
        { Backup-BmadStore -Store ([System.IO.Path]::Combine($TestDrive, 'no-such-store')) -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid $ErrorId 'BackupBmadStoreCommand')
    }

    It 'refuses a destination inside the store segments' {
        $store = New-TestStore -Events 1
        { Backup-BmadStore -Store $store -Destination ([System.IO.Path]::Combine($store, 'segments', 'b')) -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'BackupBmadStoreInvalidBackupDestination' 'BackupBmadStoreCommand')
    }
}

Describe 'Get-BmadBackup' {
    BeforeAll {
        $script:Listed = New-TestStore -Events 3
        $script:First = Backup-BmadStore -Store $script:Listed
        $null = Publish-BmadEvent -Store $script:Listed -Type 'story.reviewed' -Data @{ ok = $true }
        $script:Second = Backup-BmadStore -Store $script:Listed
    }

    It 'lists the backups newest first' {
        (Get-BmadBackup -Store $script:Listed).Name | Should -Be @($script:Second.Name, $script:First.Name)
    }

    It 'filters by name with wildcards' {
        $prefix = $script:Second.Name.Substring(0, $script:Second.Name.Length - 3)
        (Get-BmadBackup -Store $script:Listed -Name "$prefix*").Name | Should -Be $script:Second.Name
    }

    It 'checks deeply with -Deep and finds a flipped byte' {
        $store = New-TestStore -Events 3
        $backup = Backup-BmadStore -Store $store
        $segment = Get-ChildItem -Path ([System.IO.Path]::Combine($backup.Path, 'segments')) -File | Select-Object -First 1
        # Break the link to the live segment first (sealed segments may be hard links), then flip one byte.
        $bytes = [System.IO.File]::ReadAllBytes($segment.FullName)
        Remove-Item -LiteralPath $segment.FullName
        $bytes[$bytes.Length - 10] = $bytes[$bytes.Length - 10] -bxor 0x01
        [System.IO.File]::WriteAllBytes($segment.FullName, $bytes)
        (Get-BmadBackup -Store $store -Name $backup.Name -Deep).State | Should -Be 'Damaged'
    }

    It 'reports <Name> as <ErrorId>' -ForEach @(
        @{ Name = '20991231T000000000Z-abcdef'; ErrorId = 'GetBmadBackupBackupNotFound' }
        @{ Name = '../../etc'; ErrorId = 'GetBmadBackupInvalidBackupName' }
    ) {
        { Get-BmadBackup -Store $script:Listed -Name $Name -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid $ErrorId 'GetBmadBackupCommand')
    }
}

Describe 'Restore-BmadStore' {
    It 'restores the first backup from the pipeline with -Force, keeping newer events aside' {
        $store = New-TestStore -Events 3
        $null = Backup-BmadStore -Store $store
        $null = Publish-BmadEvent -Store $store -Type 'story.late' -Data @{ late = $true }

        $result = Get-BmadBackup -Store $store | Select-Object -First 1 | Restore-BmadStore -Force

        $result | Should -BeOfType ([BmadGuard.BmadRestoreResult])
        $result.EventsBefore | Should -Be 4
        $result.EventsAfter | Should -Be 3
        $result.KeptAside | Should -Be 1
        Get-Content -LiteralPath $result.KeptAsideFile | Should -Match 'story.late'
        # Seq 4 stays taken by a placeholder (seqs are never reused): the log holds the 3 restored events and it.
        $events = @(Get-BmadEvent -Store $store)
        @($events | Where-Object Type -NotLike 'bmadguard.*').Count | Should -Be 3
        $events[-1].Seq | Should -Be 4
        $events[-1].Type | Should -Be 'bmadguard.rolledback'
    }

    It 'restores up to a seq and to a point in time' {
        $store = New-TestStore -Events 5
        $null = Backup-BmadStore -Store $store
        (Restore-BmadStore -Store $store -Sequence 2 -Force).RestoredLastSeq | Should -Be 2

        $store2 = New-TestStore -Events 2
        $null = Backup-BmadStore -Store $store2
        (Restore-BmadStore -Store $store2 -At (Get-Date).AddMinutes(1) -Force).EventsAfter | Should -Be 2
    }

    It 'lists backups newest first, so the documented one-liner restores the newest (seq 10, not seq 5)' {
        $store = New-TestStore -Events 5
        $older = Backup-BmadStore -Store $store
        $null = 6..10 | ForEach-Object { @{ Type = 'story.created'; Data = @{ n = $_ } } } | Publish-BmadEvent -Store $store
        $newer = Backup-BmadStore -Store $store

        (Get-BmadBackup -Store $store).Name | Should -Be @($newer.Name, $older.Name)
        $result = Get-BmadBackup -Store $store | Select-Object -First 1 | Restore-BmadStore -Force
        $result.Backup | Should -Be $newer.Name
        $result.RestoredLastSeq | Should -Be 10
        $result.KeptAside | Should -Be 0
    }

    It 'refuses -At earlier than every event without -Force (RestoreBmadStoreSetAsideNeedsForce), and says how many it sets aside with it' {
        $store = New-TestStore -Events 4
        $null = Backup-BmadStore -Store $store
        $before = Get-SegmentHashes $store
        $early = (Get-Date).AddDays(-1)

        Restore-BmadStore -Store $store -At $early -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable refused | Should -BeNullOrEmpty
        $refused[0].FullyQualifiedErrorId | Should -Be (Get-Fqid 'RestoreBmadStoreSetAsideNeedsForce' 'RestoreBmadStoreCommand')
        $refused[0].Exception.Message | Should -Match '4 event\(s\), seqs 1\.\.4'
        $refused[0].Exception.Message | Should -Match '-Force'
        Get-SegmentHashes $store | Should -Be $before
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 4

        $result = Restore-BmadStore -Store $store -At $early -Force -WarningVariable warned -WarningAction SilentlyContinue
        $result.KeptAside | Should -Be 4
        ($warned -join ' ') | Should -Match '4 event\(s\)'
    }

    It 'changes nothing with -WhatIf, even with -Force' {
        $store = New-TestStore -Events 3
        $null = Backup-BmadStore -Store $store
        $null = Publish-BmadEvent -Store $store -Type 'story.late'
        $before = Get-SegmentHashes $store
        Restore-BmadStore -Store $store -Latest -Force -WhatIf | Should -BeNullOrEmpty
        Get-SegmentHashes $store | Should -Be $before
    }

    It 'refuses a tampered backup with RestoreBmadStoreBackupDamaged and leaves the store as it was' {
        $store = New-TestStore -Events 3
        $backup = Backup-BmadStore -Store $store
        # Flip one byte of the backup's segment (a fresh file first: sealed segments may be hard links to the store's).
        $segment = Get-ChildItem -Path ([System.IO.Path]::Combine($backup.Path, 'segments')) -File | Select-Object -First 1
        $bytes = [System.IO.File]::ReadAllBytes($segment.FullName)
        Remove-Item -LiteralPath $segment.FullName
        $bytes[$bytes.Length - 10] = $bytes[$bytes.Length - 10] -bxor 0x01
        [System.IO.File]::WriteAllBytes($segment.FullName, $bytes)
        $before = Get-SegmentHashes $store
        { Restore-BmadStore -Store $store -Name $backup.Name -Force -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'RestoreBmadStoreBackupDamaged' 'RestoreBmadStoreCommand')
        Get-SegmentHashes $store | Should -Be $before
    }

    It 'reports <Case> as <ErrorId> before asking anything' -ForEach @(
        @{ Case = 'a name with ..'; Parameters = @{ Name = '../x' }; ErrorId = 'RestoreBmadStoreInvalidBackupName' }
        @{ Case = 'an unknown backup'; Parameters = @{ Name = '20991231T000000000Z-abcdef' }; ErrorId = 'RestoreBmadStoreBackupNotFound' }
        @{ Case = 'a store without backups'; Parameters = @{ Latest = $true }; ErrorId = 'RestoreBmadStoreBackupNotFound' }
    ) {
        $store = New-TestStore -Events 1
        { Restore-BmadStore -Store $store @Parameters -Force -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid $ErrorId 'RestoreBmadStoreCommand')
    }

    It 'never prompts in a host that cannot ask: RestoreBmadStoreConfirmationRequired without -Force' {
        $store = New-TestStore -Events 1
        $null = Backup-BmadStore -Store $store
        $pwsh = Get-PowerShellCommand
        $script = "Import-Module '$script:ManifestPath'; try { Restore-BmadStore -Store '$store' -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId }"
        $output = & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -Command $script
        $output | Should -Match 'RestoreBmadStoreConfirmationRequired'
    }
}
