# Pester 5 tests of integrity, repair and the legacy bus: Test-BmadIntegrity, Repair-BmadStore, Import-BmadLegacyBus,
# Export-BmadEvent and Publish-BmadEvent -Path. They import the BUILT module (output/BmadGuard), never the source
# tree, and every store and file lives under $TestDrive. Run with: ./build.ps1 -Task Test (PowerShell 7.4+, Pester 5).

BeforeAll {
    # The built module (build.ps1 -Task Pester names it in BMADGUARD_MODULE_PATH), else output/BmadGuard.
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop

    # No test may touch the user's real default store.
    $script:SavedStoreVariable = $env:BMADGUARD_STORE
    $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'default-store')

    $script:Number = 0
    function New-TestPath([string] $Name = 'item') {
        $script:Number++
        [System.IO.Path]::Combine($TestDrive, "$Name$($script:Number)")
    }

    function New-TestStore([int] $Events = 0) {
        $path = New-TestPath 'store'
        $null = New-BmadStore -Path $path
        if ($Events -gt 0) {
            1..$Events | ForEach-Object { @{ Type = 'story.created'; Data = @{ n = $_ } } } | Publish-BmadEvent -Store $path | Out-Null
        }
        $path
    }

    # A legacy bus file as the Python agents write it (indented, naive timestamps with microseconds).
    $script:LegacyText = @'
{
  "events": [
    {
      "timestamp": "2025-07-27T00:17:39.983220",
      "event": "ai_pipeline_ready",
      "data": {
        "status": "success",
        "agent": "AiDeveloper"
      }
    },
    {
      "timestamp": "2025-07-27T00:29:01.526390",
      "event": "workflow_failed",
      "data": {
        "workflow_id": "test_workflow_1753568936",
        "failed_tasks": ["task2", "task1"]
      }
    },
    {
      "timestamp": "2025-07-27T00:31:12.000100",
      "event": "story_created",
      "data": {
        "story": "S-7"
      }
    }
  ]
}
'@ -replace "`r`n", "`n"

    function New-LegacyFile([string] $Text = $script:LegacyText) {
        $dir = New-TestPath 'bus'
        $null = New-Item -ItemType Directory -Path $dir
        $file = [System.IO.Path]::Combine($dir, 'shared_context.json')
        [System.IO.File]::WriteAllText($file, $Text, [System.Text.UTF8Encoding]::new($false))
        $file
    }

    # The legacy text cut just after the third event's "data": (a serializer that died half way).
    function Get-TruncatedLegacyText {
        $at = $script:LegacyText.LastIndexOf('"data": ')
        $script:LegacyText.Substring(0, $at + '"data": '.Length)
    }

    function Get-Fqid([string] $ErrorId, [string] $CommandClass) {
        "$ErrorId,BmadGuard.Commands.$CommandClass"
    }

    function Get-Sha256([string] $Path) {
        (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash
    }

    # Flips one byte in the middle of the store's first segment (after its header line).
    function Set-StoreDamage([string] $Store) {
        $segment = Get-ChildItem -Path ([System.IO.Path]::Combine($Store, 'segments')) -Filter 'segment-*.jsonl' | Sort-Object Name | Select-Object -First 1
        $bytes = [System.IO.File]::ReadAllBytes($segment.FullName)
        $headerEnd = [Array]::IndexOf($bytes, [byte]10)
        $at = $headerEnd + [int](($bytes.Length - $headerEnd) / 2)
        $bytes[$at] = $bytes[$at] -bxor 0x20
        [System.IO.File]::WriteAllBytes($segment.FullName, $bytes)
        $segment.FullName
    }
}

AfterAll {
    $env:BMADGUARD_STORE = $script:SavedStoreVariable
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'The integrity commands' {
    It '<_> is exported and has help with at least two examples' -ForEach @(
        'Test-BmadIntegrity', 'Repair-BmadStore', 'Import-BmadLegacyBus', 'Export-BmadEvent'
    ) {
        Get-Command -Module BmadGuard -Name $_ | Should -Not -BeNullOrEmpty
        $help = Get-Help -Name $_ -Full
        $help.Synopsis | Should -Not -BeLike "$_*"
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
    }
}

Describe 'Test-BmadIntegrity' {
    It 'reports a healthy store with what it checked' {
        $store = New-TestStore -Events 5
        $report = Test-BmadIntegrity -Store $store
        $report | Should -BeOfType ([BmadGuard.BmadIntegrityReport])
        $report.Healthy | Should -BeTrue
        $report.Kind | Should -Be 'store'
        $report.RecordsChecked | Should -Be 5
        $report.BytesChecked | Should -BeGreaterThan 0
        $report.ErrorCount | Should -Be 0
    }

    It 'finds a flipped byte in a store and names the segment and offset' {
        $store = New-TestStore -Events 20
        $segment = Set-StoreDamage $store
        $report = Test-BmadIntegrity -Store $store
        $report.Healthy | Should -BeFalse
        $finding = $report.Findings | Where-Object Severity -eq 'Error' | Select-Object -First 1
        $finding.Code | Should -Be 'RecordDamaged'
        $finding.File | Should -Be $segment
        $finding.Offset | Should -BeGreaterThan 0
    }

    It 'returns only $true or $false with -Quiet' {
        $store = New-TestStore -Events 3
        Test-BmadIntegrity -Store $store -Quiet | Should -BeExactly $true
        $null = Set-StoreDamage $store
        Test-BmadIntegrity -Store $store -Quiet | Should -BeExactly $false
    }

    It 'checks a legacy bus file: healthy, then damaged with line and column' {
        $file = New-LegacyFile
        (Test-BmadIntegrity -Path $file).Healthy | Should -BeTrue
        $bad = New-LegacyFile (Get-TruncatedLegacyText)
        $report = Test-BmadIntegrity -Path $bad
        $report.Healthy | Should -BeFalse
        $report.Kind | Should -Be 'file'
        $error1 = $report.Findings | Where-Object Severity -eq 'Error' | Select-Object -First 1
        $error1.Code | Should -Be 'InvalidJson'
        $error1.Line | Should -BeGreaterThan 20
    }

    It 'checks a file against a JSON Schema' {
        $file = New-LegacyFile
        $schema = [System.IO.Path]::Combine($TestDrive, 'max2.schema.json')
        Set-Content -LiteralPath $schema -Value '{"type":"object","properties":{"events":{"type":"array","maxItems":2}}}'
        $report = Test-BmadIntegrity -Path $file -Schema $schema
        $report.Healthy | Should -BeFalse
        $report.Findings.Code | Should -Contain 'SchemaViolation'
    }

    It 'takes Get-ChildItem output and checks each file' {
        $good = New-LegacyFile
        $bad = New-LegacyFile (Get-TruncatedLegacyText)
        $reports = Get-ChildItem -LiteralPath $good, $bad | Test-BmadIntegrity
        $reports.Count | Should -Be 2
        ($reports | Where-Object Target -eq $good).Healthy | Should -BeTrue
        ($reports | Where-Object Target -eq $bad).Healthy | Should -BeFalse
    }

    It 'takes store paths and files piped as strings' {
        $store = New-TestStore -Events 1
        $file = New-LegacyFile
        $reports = $store, $file | Test-BmadIntegrity
        $reports.Kind | Should -Be @('store', 'file')
    }

    It 'reports <Name> with <ErrorId> and goes on to the next item' -ForEach @(
        @{ Name = 'a missing file'; Params = @{ Path = 'missing.json' }; ErrorId = 'TestBmadIntegrityFileNotFound'; Category = 'ObjectNotFound' }
        @{ Name = 'a schema that is not JSON'; Params = @{ Schema = 'broken.schema.json' }; ErrorId = 'TestBmadIntegrityInvalidSchema'; Category = 'InvalidData' }
        @{ Name = 'a directory that is no store'; Params = @{ Store = 'empty-dir' }; ErrorId = 'TestBmadIntegrityStoreNotFound'; Category = 'ObjectNotFound' }
    ) {
        Push-Location -LiteralPath $TestDrive
        try {
            Set-Content -LiteralPath 'broken.schema.json' -Value '{ not json'
            $null = New-Item -ItemType Directory -Path 'empty-dir' -Force
            $call = @{} + $Params
            if ($call.ContainsKey('Schema')) { $call.Path = New-LegacyFile }
            $err = $null
            try { Test-BmadIntegrity @call -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be (Get-Fqid $ErrorId 'TestBmadIntegrityCommand')
            $err.CategoryInfo.Category | Should -Be $Category
        }
        finally {
            Pop-Location
        }
    }

    It 'writes the report for the good item after an error for the bad one' {
        $file = New-LegacyFile
        # FileInfo objects (as Get-ChildItem writes them) bind to -Path by their FullName; a piped string is a -Store.
        $items = @([System.IO.FileInfo]::new([System.IO.Path]::Combine($TestDrive, 'nope.json')), [System.IO.FileInfo]::new($file))
        $reports = $items | Test-BmadIntegrity -ErrorVariable errs -ErrorAction SilentlyContinue
        @($reports).Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -Be (Get-Fqid 'TestBmadIntegrityFileNotFound' 'TestBmadIntegrityCommand')
    }

    It 'resolves a PSDrive path' {
        $file = New-LegacyFile
        $null = New-PSDrive -Name BgInt -PSProvider FileSystem -Root ([System.IO.Path]::GetDirectoryName($file))
        try {
            (Test-BmadIntegrity -Path 'BgInt:\shared_context.json').Target | Should -Be $file
        }
        finally {
            Remove-PSDrive -Name BgInt
        }
    }
}

Describe 'Repair-BmadStore' {
    It 'changes nothing with -WhatIf' {
        $store = New-TestStore -Events 10
        $segment = Set-StoreDamage $store
        $before = Get-Sha256 $segment
        Repair-BmadStore -Store $store -WhatIf | Should -BeNullOrEmpty
        Get-Sha256 $segment | Should -Be $before
        Test-Path -Path ([System.IO.Path]::Combine($store, 'quarantine', '*')) | Should -BeFalse

        $file = New-LegacyFile (Get-TruncatedLegacyText)
        $fileHash = Get-Sha256 $file
        Repair-BmadStore -Path $file -WhatIf -Force | Should -BeNullOrEmpty
        Get-Sha256 $file | Should -Be $fileHash
    }

    It 'repairs a damaged store, keeps the damaged bytes in quarantine and reports them' {
        $store = New-TestStore -Events 20
        $null = Set-StoreDamage $store
        $report = Repair-BmadStore -Store $store -Force
        $report | Should -BeOfType ([BmadGuard.BmadRepairReport])
        $report.WasHealthy | Should -BeFalse
        $report.BytesMoved | Should -BeGreaterThan 0
        $moved = $report.Actions | Where-Object QuarantinePath
        $moved | Should -Not -BeNullOrEmpty
        foreach ($action in $moved) { Test-Path -LiteralPath $action.QuarantinePath | Should -BeTrue }
        (Test-BmadIntegrity -Store $store).Healthy | Should -BeTrue
    }

    It 'leaves a healthy store alone' {
        $store = New-TestStore -Events 3
        $report = Repair-BmadStore -Store $store -Confirm:$false
        $report.WasHealthy | Should -BeTrue
        $report.BytesMoved | Should -Be 0
        (Get-BmadEvent -Store $store).Count | Should -Be 3
    }

    It 'salvages every complete event of a truncated legacy file and keeps the original' {
        $text = Get-TruncatedLegacyText
        $file = New-LegacyFile $text
        $report = Repair-BmadStore -Path $file -Force
        $report.Kind | Should -Be 'file'
        $report.RecoveredEvents | Should -Be 2
        $report.DamageOffset | Should -BeGreaterThan 0
        [System.IO.File]::ReadAllText($report.QuarantinePath) | Should -BeExactly $text
        (Test-BmadIntegrity -Path $file).Healthy | Should -BeTrue
    }

    It 'takes a damaged report from Test-BmadIntegrity through the pipeline' {
        $store = New-TestStore -Events 5
        $null = Set-StoreDamage $store
        $report = Test-BmadIntegrity -Store $store | Where-Object { -not $_.Healthy } | Repair-BmadStore -Force
        $report.Target | Should -Be $store
        (Test-BmadIntegrity -Store $store -Quiet) | Should -BeTrue
    }

    It 'reports a missing legacy file with RepairBmadStoreFileNotFound' {
        { Repair-BmadStore -Path ([System.IO.Path]::Combine($TestDrive, 'none', 'x.json')) -Force -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'RepairBmadStoreFileNotFound' 'RepairBmadStoreCommand')
    }
}

Describe 'Import-BmadLegacyBus' {
    It 'imports every event with its time, type and data' {
        $store = New-TestStore
        $result = Import-BmadLegacyBus -Path (New-LegacyFile) -Store $store
        $result | Should -BeOfType ([BmadGuard.BmadLegacyImportResult])
        $result.Imported | Should -Be 3
        $events = Get-BmadEvent -Store $store
        $events.Type | Should -Be @('ai_pipeline_ready', 'workflow_failed', 'story_created')
        $events[0].Timestamp.UtcDateTime | Should -Be ([datetime]::new(2025, 7, 27, 0, 17, 39, [System.DateTimeKind]::Utc).AddTicks(9832200))
        $events[1].Data.failed_tasks | Should -Be @('task2', 'task1')
        $events[0].Source | Should -Be 'legacy'
    }

    It 'imports nothing the second time' {
        $store = New-TestStore
        $file = New-LegacyFile
        $null = Import-BmadLegacyBus -Path $file -Store $store
        $second = Import-BmadLegacyBus -Path $file -Store $store
        $second.Imported | Should -Be 0
        $second.AlreadyPresent | Should -Be 3
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 3
    }

    It 'imports the complete events of a damaged file without changing the file' {
        $store = New-TestStore
        $file = New-LegacyFile (Get-TruncatedLegacyText)
        $hash = Get-Sha256 $file
        $result = Import-BmadLegacyBus -Path $file -Store $store -WarningVariable warnings -WarningAction SilentlyContinue
        $result.Imported | Should -Be 2
        $result.DamageOffset | Should -BeGreaterThan 0
        $warnings | Should -Not -BeNullOrEmpty
        Get-Sha256 $file | Should -Be $hash
    }

    It 'writes nothing with -WhatIf' {
        $store = New-TestStore
        Import-BmadLegacyBus -Path (New-LegacyFile) -Store $store -WhatIf | Should -BeNullOrEmpty
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'reports a missing file with ImportBmadLegacyBusFileNotFound' {
        $store = New-TestStore
        { Import-BmadLegacyBus -Path ([System.IO.Path]::Combine($TestDrive, 'nope.json')) -Store $store -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'ImportBmadLegacyBusFileNotFound' 'ImportBmadLegacyBusCommand')
    }
}

Describe 'Export-BmadEvent' {
    It 'exports a store in the legacy shape, which imports back to the same events' {
        $store = New-TestStore
        $file = New-LegacyFile
        $null = Import-BmadLegacyBus -Path $file -Store $store
        $out = [System.IO.Path]::Combine($TestDrive, 'export-legacy.json')
        $result = Export-BmadEvent -Store $store -Path $out
        $result | Should -BeOfType ([BmadGuard.BmadExportResult])
        $result.EventCount | Should -Be 3
        (Test-BmadIntegrity -Path $out).Healthy | Should -BeTrue
        $exported = (Get-Content -LiteralPath $out -Raw | ConvertFrom-Json).events
        $original = (Get-Content -LiteralPath $file -Raw | ConvertFrom-Json).events
        $exported.timestamp | Should -Be $original.timestamp
        $exported.event | Should -Be $original.event
    }

    It 'exports only the events piped from Get-BmadEvent, as NDJSON' {
        $store = New-TestStore
        'story.created', 'task.created', 'story.done' | ForEach-Object { Publish-BmadEvent -Store $store -Type $_ -Data @{ t = $_ } } | Out-Null
        $out = [System.IO.Path]::Combine($TestDrive, 'stories.ndjson')
        $result = Get-BmadEvent -Store $store -Type 'story.*' | Export-BmadEvent -Path $out -Format Ndjson
        $result.EventCount | Should -Be 2
        $lines = Get-Content -LiteralPath $out
        ($lines | ForEach-Object { ($_ | ConvertFrom-Json).type }) | Should -Be @('story.created', 'story.done')
    }

    It 'writes an empty legacy file when the pipeline delivers no event' {
        $store = New-TestStore -Events 2
        $out = [System.IO.Path]::Combine($TestDrive, 'none.json')
        $result = Get-BmadEvent -Store $store -Type 'no.such.*' | Export-BmadEvent -Path $out
        $result.EventCount | Should -Be 0
        (Get-Content -LiteralPath $out -Raw | ConvertFrom-Json).events.Count | Should -Be 0
        (Test-BmadIntegrity -Path $out).Healthy | Should -BeTrue
    }

    It 'filters by -Type and -After' {
        $store = New-TestStore -Events 5
        $out = [System.IO.Path]::Combine($TestDrive, 'after.ndjson')
        (Export-BmadEvent -Store $store -Path $out -Format Ndjson -Type 'story.*' -After 3).EventCount | Should -Be 2
    }

    It 'writes nothing with -WhatIf' {
        $store = New-TestStore -Events 2
        $out = [System.IO.Path]::Combine($TestDrive, 'whatif.json')
        Export-BmadEvent -Store $store -Path $out -WhatIf | Should -BeNullOrEmpty
        Test-Path -LiteralPath $out | Should -BeFalse
        Get-BmadEvent -Store $store | Export-BmadEvent -Path $out -WhatIf | Should -BeNullOrEmpty
        Test-Path -LiteralPath $out | Should -BeFalse
    }

    It 'fails with ExportBmadEventFileNotFound when the directory does not exist, and leaves no file' {
        $store = New-TestStore -Events 1
        $out = [System.IO.Path]::Combine($TestDrive, 'no-such-dir', 'x.json')
        { Export-BmadEvent -Store $store -Path $out -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'ExportBmadEventFileNotFound' 'ExportBmadEventCommand')
    }
}

Describe 'Publish-BmadEvent -Path (the legacy bus file)' {
    It 'appends an event in the legacy shape after a backup generation, leaving earlier bytes unchanged' {
        $file = New-LegacyFile
        $result = Publish-BmadEvent -Path $file -Type story.created -Data @{ story = 'S-42' }
        $result | Should -BeOfType ([BmadGuard.BmadLegacyPublishResult])
        $result.EventCount | Should -Be 4
        $result.Created | Should -BeFalse
        [System.IO.File]::ReadAllText($result.GenerationPath) | Should -BeExactly $script:LegacyText
        $events = (Get-Content -LiteralPath $file -Raw | ConvertFrom-Json).events
        $events.Count | Should -Be 4
        $events[3].event | Should -Be 'story.created'
        $events[3].data.story | Should -Be 'S-42'
        # The timestamp as written (ConvertFrom-Json in PowerShell 7 turns it into a [datetime]): Python's isoformat().
        $written = [regex]::Matches((Get-Content -LiteralPath $file -Raw), '"timestamp":\s*"([^"]*)"')
        $written[3].Groups[1].Value | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$'
        (Test-BmadIntegrity -Path $file).Healthy | Should -BeTrue
    }

    It 'creates a missing file and keeps only -KeepGenerations generations' {
        $dir = New-TestPath 'newbus'
        $null = New-Item -ItemType Directory -Path $dir
        $file = [System.IO.Path]::Combine($dir, 'shared_context.json')
        (Publish-BmadEvent -Path $file -Type a.b).Created | Should -BeTrue
        1..4 | ForEach-Object { $null = Publish-BmadEvent -Path $file -Type a.b -Data @{ n = $_ } -KeepGenerations 2 }
        @(Get-ChildItem -LiteralPath ([System.IO.Path]::Combine($dir, '.bmadguard-generations'))).Count | Should -Be 2
        ((Get-Content -LiteralPath $file -Raw | ConvertFrom-Json).events).Count | Should -Be 5
    }

    It 'refuses a damaged file with PublishBmadEventLegacyFileDamaged and leaves it untouched' {
        $file = New-LegacyFile (Get-TruncatedLegacyText)
        $hash = Get-Sha256 $file
        $err = $null
        try { Publish-BmadEvent -Path $file -Type a.b -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be (Get-Fqid 'PublishBmadEventLegacyFileDamaged' 'PublishBmadEventCommand')
        $err.CategoryInfo.Category | Should -Be 'ReadError'
        Get-Sha256 $file | Should -Be $hash
    }

    It 'refuses bad data with the same ErrorId as a store publish, writing nothing' {
        $file = New-LegacyFile
        { Publish-BmadEvent -Path $file -Type a.b -Data '[1,2]' -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventDataNotObject' 'PublishBmadEventCommand')
        [System.IO.File]::ReadAllText($file) | Should -BeExactly $script:LegacyText
    }

    It 'writes nothing with -WhatIf' {
        $file = New-LegacyFile
        Publish-BmadEvent -Path $file -Type a.b -WhatIf | Should -BeNullOrEmpty
        [System.IO.File]::ReadAllText($file) | Should -BeExactly $script:LegacyText
    }

    It 'waits for the agents lock and fails with PublishBmadEventLockTimeout while it is held' {
        $file = New-LegacyFile
        $holder = [System.IO.File]::Open("$file.lock", 'OpenOrCreate', 'ReadWrite', 'None')
        try {
            { Publish-BmadEvent -Path $file -Type a.b -LockTimeout 0.3 -ErrorAction Stop } |
                Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventLockTimeout' 'PublishBmadEventCommand')
        }
        finally {
            $holder.Dispose()
        }
        [System.IO.File]::ReadAllText($file) | Should -BeExactly $script:LegacyText
    }

    It 'still publishes to a store without -Path' {
        $store = New-TestStore
        (Publish-BmadEvent -Store $store -Type a.b).Seq | Should -Be 1
    }
}
