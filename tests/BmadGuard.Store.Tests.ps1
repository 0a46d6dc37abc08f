# Pester 5 tests of the store cmdlets: New-BmadStore, Publish-BmadEvent, Get-BmadEvent, Get-BmadStoreStatistics.
# They import the BUILT module (build.ps1 -Task Build assembles output/BmadGuard), never the source tree,
# and every store lives under $TestDrive. Run with: ./build.ps1 -Task Test (PowerShell 7.4+ and Pester 5).

BeforeAll {
    # The built module (build.ps1 -Task Pester names it in BMADGUARD_MODULE_PATH), else output/BmadGuard.
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop

    # No test may touch the user's real default store: point the default at the test drive.
    $script:SavedStoreVariable = $env:BMADGUARD_STORE
    $env:BMADGUARD_STORE = [System.IO.Path]::Combine($TestDrive, 'default-store')

    $script:StoreNumber = 0
    function New-TestStorePath {
        $script:StoreNumber++
        [System.IO.Path]::Combine($TestDrive, "store$($script:StoreNumber)")
    }

    function New-TestStore {
        param([hashtable] $Settings = @{})
        $path = New-TestStorePath
        $null = New-BmadStore -Path $path @Settings
        $path
    }

    # FullyQualifiedErrorId of an error a cmdlet reports: '<ErrorId>,<cmdlet class>'.
    function Get-Fqid([string] $ErrorId, [string] $CommandClass) {
        "$ErrorId,BmadGuard.Commands.$CommandClass"
    }

    function Get-StoreLines([string] $Store) {
        $segments = Get-ChildItem -Path ([System.IO.Path]::Combine($Store, 'segments')) -Filter 'segment-*.jsonl'
        $segments | Sort-Object -Property Name | ForEach-Object { Get-Content -LiteralPath $_.FullName }
    }
}

AfterAll {
    $env:BMADGUARD_STORE = $script:SavedStoreVariable
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'The BmadGuard module' {
    It 'has a valid manifest' {
        $manifest = Test-ModuleManifest -Path $script:ManifestPath -ErrorAction Stop
        $manifest.Version | Should -Be ([version]'0.1.0')
        $manifest.CompatiblePSEditions | Should -Contain 'Core'
        $manifest.CompatiblePSEditions | Should -Contain 'Desktop'
    }

    It 'exports exactly the cmdlets the manifest lists, the store cmdlets among them' {
        $listed = (Import-PowerShellDataFile -Path $script:ManifestPath).CmdletsToExport | Sort-Object
        $exported = (Get-Command -Module BmadGuard -CommandType Cmdlet).Name | Sort-Object
        $exported | Should -Be $listed
        foreach ($name in 'New-BmadStore', 'Publish-BmadEvent', 'Get-BmadEvent', 'Get-BmadStoreStatistics') {
            $exported | Should -Contain $name
        }
    }

    It '<_> has help with a synopsis and at least two examples' -ForEach @(
        'New-BmadStore', 'Publish-BmadEvent', 'Get-BmadEvent', 'Get-BmadStoreStatistics'
    ) {
        $help = Get-Help -Name $_ -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -BeLike "$_*"   # without help, the synopsis is the generated syntax line
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
    }

    It 'loads BmadGuard.Core outside the default load context on PowerShell 7' -Skip:($PSEdition -ne 'Core') {
        $framework = [BmadGuard.Commands.PublishBmadEventCommand].Assembly.GetCustomAttributes([System.Runtime.Versioning.TargetFrameworkAttribute], $false).FrameworkName
        if ($framework -like '.NETStandard*') {
            Set-ItResult -Skipped -Because 'the netstandard2.0 (Windows PowerShell 5.1) binaries resolve their dependencies with AssemblyResolve'
            return
        }
        $null = Get-BmadStoreStatistics -Store (New-TestStore)
        $core = [System.AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'BmadGuard.Core' }
        $core | Should -Not -BeNullOrEmpty
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($core[0]).Name | Should -Be 'BmadGuard.Dependencies'
    }
}

Describe 'New-BmadStore' {
    It 'creates a store and reports it' {
        $path = New-TestStorePath
        $store = New-BmadStore -Path $path
        $store | Should -BeOfType ([BmadGuard.BmadStoreInfo])
        $store.Created | Should -BeTrue
        $store.Path | Should -Be $path
        $store.MaxDepth | Should -Be 64
        [System.IO.Path]::Combine($path, 'bmadguard.store.json') | Should -Exist
        [System.IO.Path]::Combine($path, 'segments') | Should -Exist
    }

    It 'adopts an existing store without changing it, and warns about settings it cannot apply' {
        $path = New-TestStore -Settings @{ MaxDepth = 10 }
        $settingsBefore = Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($path, 'bmadguard.store.json'))
        $again = New-BmadStore -Path $path -MaxDepth 20 -WarningVariable warnings -WarningAction SilentlyContinue
        $again.Created | Should -BeFalse
        $again.MaxDepth | Should -Be 10
        $warnings.Count | Should -Be 1
        Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($path, 'bmadguard.store.json')) | Should -BeExactly $settingsBefore
    }

    It 'creates nothing with -WhatIf' {
        $path = New-TestStorePath
        New-BmadStore -Path $path -WhatIf | Should -BeNullOrEmpty
        $path | Should -Not -Exist
    }

    It 'resolves a relative path against the PowerShell location, not the process directory' {
        Push-Location -LiteralPath $TestDrive
        try {
            $store = New-BmadStore -Path 'relative-store'
        }
        finally {
            Pop-Location
        }
        $store.Path | Should -Be ([System.IO.Path]::Combine($TestDrive, 'relative-store'))
        [System.IO.Path]::Combine($TestDrive, 'relative-store', 'bmadguard.store.json') | Should -Exist
    }

    It 'resolves a PSDrive path' {
        $null = New-PSDrive -Name BmadTest -PSProvider FileSystem -Root $TestDrive -Scope Global
        try {
            $store = New-BmadStore -Path 'BmadTest:\drive-store'
        }
        finally {
            Remove-PSDrive -Name BmadTest -Scope Global
        }
        $store.Path | Should -Be ([System.IO.Path]::Combine($TestDrive, 'drive-store'))
        [System.IO.Path]::Combine($TestDrive, 'drive-store', 'bmadguard.store.json') | Should -Exist
    }

    It 'uses $env:BMADGUARD_STORE when no path is given' {
        $env:BMADGUARD_STORE = New-TestStorePath
        $store = New-BmadStore
        $store.Path | Should -Be $env:BMADGUARD_STORE
        [System.IO.Path]::Combine($env:BMADGUARD_STORE, 'bmadguard.store.json') | Should -Exist
    }

    It 'refuses a directory that holds other files, and leaves it untouched' {
        $path = New-TestStorePath
        $null = New-Item -ItemType Directory -Path $path
        Set-Content -LiteralPath ([System.IO.Path]::Combine($path, 'notes.txt')) -Value 'mine'
        { New-BmadStore -Path $path -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'NewBmadStoreInvalidArgument' 'NewBmadStoreCommand')
        (Get-ChildItem -LiteralPath $path).Name | Should -Be 'notes.txt'
    }

    It 'refuses a path that is not on the file system' {
        { New-BmadStore -Path 'Env:\NotAStore' -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'NewBmadStoreInvalidStorePath' 'NewBmadStoreCommand')
    }

    It 'creates every store piped to it and reports the one that fails without stopping' {
        $good1 = New-TestStorePath
        $bad = New-TestStorePath
        $good2 = New-TestStorePath
        Set-Content -LiteralPath $bad -Value 'a file, not a directory'
        $created = $good1, $bad, $good2 | New-BmadStore -ErrorVariable errors -ErrorAction SilentlyContinue
        $created.Path | Should -Be @($good1, $good2)
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be (Get-Fqid 'NewBmadStoreInvalidArgument' 'NewBmadStoreCommand')
    }
}

Describe 'Publish-BmadEvent' {
    BeforeEach {
        $store = New-TestStore
    }

    It 'publishes hashtable data and returns the acknowledged event' {
        $published = Publish-BmadEvent -Store $store -Type story.created -Source architect -CorrelationId corr-1 -Data @{ story = 'S-1'; points = 5 }
        $published | Should -BeOfType ([BmadGuard.BmadEvent])
        $published.Seq | Should -Be 1
        $published.Type | Should -Be 'story.created'
        $published.Source | Should -Be 'architect'
        $published.CorrelationId | Should -Be 'corr-1'
        $published.Data.story | Should -Be 'S-1'
        $published.Data.points | Should -Be 5
        $published.Id | Should -Not -BeNullOrEmpty

        $stored = @(Get-BmadEvent -Store $store)
        $stored.Count | Should -Be 1
        $stored[0].Id | Should -Be $published.Id
        $stored[0].Json | Should -BeExactly $published.Json
    }

    It 'stores a [pscustomobject] with nested objects and arrays as JSON' {
        $data = [pscustomobject]@{ story = 'S-2'; owner = [pscustomobject]@{ name = 'dev-1'; tags = @('a', 'b') }; sizes = @(1, 2, 3) }
        $published = Publish-BmadEvent -Store $store -Type story.created -Data $data
        $published.DataJson | Should -BeExactly '{"story":"S-2","owner":{"name":"dev-1","tags":["a","b"]},"sizes":[1,2,3]}'
    }

    It 'stores an ordered hashtable in its order' {
        $published = Publish-BmadEvent -Store $store -Type a.b -Data ([ordered]@{ z = 1; a = 2; m = $true; n = $null })
        $published.DataJson | Should -BeExactly '{"z":1,"a":2,"m":true,"n":null}'
    }

    It 'stores a JSON object string as it is' {
        $published = Publish-BmadEvent -Store $store -Type a.b -Data '{"x": [1, 2.5, "y"], "ok": false}'
        $published.DataJson | Should -BeExactly '{"x":[1,2.5,"y"],"ok":false}'
    }

    It 'stores {} when there is no data, and uses the default source' {
        $published = Publish-BmadEvent -Store $store -Type a.b
        $published.DataJson | Should -BeExactly '{}'
        $published.Source | Should -Be 'unknown'
    }

    It 'takes -Type and -Data by position' {
        $published = Publish-BmadEvent story.created @{ story = 'S-3' } -Store $store
        $published.Type | Should -Be 'story.created'
        $published.Data.story | Should -Be 'S-3'
    }

    It 'writes nothing with -WhatIf' {
        $result = Publish-BmadEvent -Store $store -Type a.b -Data @{ x = 1 } -WhatIf
        $result | Should -BeNullOrEmpty
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'does not even open a missing store with -WhatIf' {
        $missing = New-TestStorePath
        { Publish-BmadEvent -Store $missing -Type a.b -WhatIf -ErrorAction Stop } | Should -Not -Throw
        $missing | Should -Not -Exist
    }

    It 'refuses <Name> with <ErrorId> and writes nothing' -ForEach @(
        @{ Name = 'a type outside the pattern'; Params = @{ Type = 'not a type!' }; ErrorId = 'PublishBmadEventInvalidEventType' }
        @{ Name = 'a reserved type'; Params = @{ Type = 'bmadguard.probe' }; ErrorId = 'PublishBmadEventReservedEventType' }
        @{ Name = 'a bad source'; Params = @{ Type = 'a.b'; Source = 'has spaces' }; ErrorId = 'PublishBmadEventInvalidSource' }
        @{ Name = 'a bad correlation id'; Params = @{ Type = 'a.b'; CorrelationId = 'has spaces' }; ErrorId = 'PublishBmadEventInvalidCorrelationId' }
        @{ Name = 'a JSON array as data'; Params = @{ Type = 'a.b'; Data = '[1,2]' }; ErrorId = 'PublishBmadEventDataNotObject' }
        @{ Name = 'malformed JSON'; Params = @{ Type = 'a.b'; Data = '{"a":' }; ErrorId = 'PublishBmadEventInvalidData' }
        @{ Name = 'a number as data'; Params = @{ Type = 'a.b'; Data = 42 }; ErrorId = 'PublishBmadEventDataNotObject' }
        @{ Name = 'a script block in data'; Params = @{ Type = 'a.b'; Data = @{ run = { Get-Date } } }; ErrorId = 'PublishBmadEventUnserializableData' }
        @{ Name = 'NaN in data'; Params = @{ Type = 'a.b'; Data = @{ ratio = [double]::NaN } }; ErrorId = 'PublishBmadEventUnserializableData' }
    ) {
        { Publish-BmadEvent -Store $store @Params -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid $ErrorId 'PublishBmadEventCommand')
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'refuses data nested deeper than the store allows' {
        $shallow = New-TestStore -Settings @{ MaxDepth = 3 }
        { Publish-BmadEvent -Store $shallow -Type a.b -Data @{ l1 = @{ l2 = @{ l3 = @{ l4 = 1 } } } } -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventDataTooDeep' 'PublishBmadEventCommand')
        (Get-BmadStoreStatistics -Store $shallow).TotalEvents | Should -Be 0
    }

    It 'refuses an event over the size limit' {
        $small = New-TestStore -Settings @{ MaxEventBytes = 2048 }
        { Publish-BmadEvent -Store $small -Type a.b -Data @{ blob = 'x' * 5000 } -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventEventTooLarge' 'PublishBmadEventCommand')
        (Get-BmadStoreStatistics -Store $small).TotalEvents | Should -Be 0
    }

    It 'publishes hashtables piped by value, in order, with contiguous seqs' {
        $events = 1..5 | ForEach-Object { @{ Type = 'n.item'; Source = 'piper'; Data = @{ i = $_ } } } | Publish-BmadEvent -Store $store
        $events.Seq | Should -Be @(1, 2, 3, 4, 5)
        ($events | ForEach-Object { $_.Data.i }) | Should -Be @(1, 2, 3, 4, 5)
        (Get-BmadEvent -Store $store).Source | Sort-Object -Unique | Should -Be 'piper'
    }

    It 'takes objects with Type, Data, Source and CorrelationId properties' {
        $events = @(
            [pscustomobject]@{ Type = 'x.one'; Data = @{ a = 1 }; Source = 'src-1'; CorrelationId = 'c1' }
            [pscustomobject]@{ Type = 'x.two'; Data = '{"b":2}'; Source = 'src-2'; CorrelationId = '' }   # a blank CSV column
        ) | Publish-BmadEvent -Store $store
        $events.Type | Should -Be @('x.one', 'x.two')
        $events.Source | Should -Be @('src-1', 'src-2')
        $events[0].CorrelationId | Should -Be 'c1'
        $events[1].DataJson | Should -BeExactly '{"b":2}'
        $events[1].CorrelationId | Should -BeNullOrEmpty
    }

    It 'takes the type from the command line and the rest from piped objects' {
        $events = [pscustomobject]@{ Data = @{ n = 1 }; Source = 'qa' }, [pscustomobject]@{ Data = @{ n = 2 }; Source = 'qa' } |
            Publish-BmadEvent -Store $store -Type review.done
        $events.Type | Sort-Object -Unique | Should -Be 'review.done'
        ($events | ForEach-Object { $_.Data.n }) | Should -Be @(1, 2)
    }

    It 'reports a bad item and still publishes the others, in order' {
        $events = @(
            @{ Type = 'ok.first'; Data = @{} }
            @{ Type = 'not valid!'; Data = @{} }
            @{ Type = 'ok.second'; Data = '[1]' }
            @{ Type = 'ok.third'; Data = @{ z = 1 } }
        ) | Publish-BmadEvent -Store $store -ErrorVariable errors -ErrorAction SilentlyContinue
        $events.Type | Should -Be @('ok.first', 'ok.third')
        $events.Seq | Should -Be @(1, 2)
        $errors.FullyQualifiedErrorId | Should -Be @(
            (Get-Fqid 'PublishBmadEventInvalidEventType' 'PublishBmadEventCommand'),
            (Get-Fqid 'PublishBmadEventDataNotObject' 'PublishBmadEventCommand'))
        # Each error names the item's position in the pipeline, as `bmadguard publish --stdin` names the line.
        $errors[0].ErrorDetails.Message | Should -BeLike 'Pipeline item 2: *'
        $errors[1].ErrorDetails.Message | Should -BeLike 'Pipeline item 3: *'
        (Get-BmadEvent -Store $store).Type | Should -Be @('ok.first', 'ok.third')
    }

    It 'rejects each bad item of one batch on its own, caught by the batch check or the store, and the rest go in one fsync' {
        $small = New-TestStore -Settings @{ MaxEventBytes = 2048 }
        $events = @(
            @{ Type = 'b.one'; Data = @{ i = 1 } }
            @{ Type = 'b.big'; Data = @{ blob = 'x' * 5000 } }       # only the store's own limit refuses it
            @{ Type = 'b.two'; Data = @{ i = 2 } }
            @{ Type = 'b.bad'; Data = @{ s = "a$([char]0xD800)" } }  # an unpaired surrogate
            @{ Type = 'b.three'; Data = @{ i = 3 } }
        ) | Publish-BmadEvent -Store $small -ErrorVariable errors -ErrorAction SilentlyContinue
        $events.Type | Should -Be @('b.one', 'b.two', 'b.three')
        $events.Seq | Should -Be @(1, 2, 3)
        $errors.FullyQualifiedErrorId | Should -Be @(
            (Get-Fqid 'PublishBmadEventEventTooLarge' 'PublishBmadEventCommand'),
            (Get-Fqid 'PublishBmadEventInvalidData' 'PublishBmadEventCommand'))
        $errors[0].ErrorDetails.Message | Should -BeLike 'Pipeline item 2: *'
        $errors[1].ErrorDetails.Message | Should -BeLike 'Pipeline item 4: *'
        (Get-BmadEvent -Store $small).Type | Should -Be @('b.one', 'b.two', 'b.three')
    }

    It 'refuses <Name> with PublishBmadEventInvalidData instead of storing U+FFFD' -ForEach @(
        @{ Name = 'an unpaired surrogate in a hashtable value'; Data = @{ x = "a$([char]0xD800)b" } }
        @{ Name = 'an unpaired surrogate in a hashtable key'; Data = @{ "k$([char]0xDC00)" = 1 } }
        @{ Name = 'an unpaired surrogate in a [pscustomobject]'; Data = [pscustomobject]@{ x = @("$([char]0xD83D)") } }
        @{ Name = 'a JSON escape of an unpaired surrogate'; Data = '{"x":"\ud800"}' }
        @{ Name = 'a JSON key escaping an unpaired surrogate'; Data = '{"\udfff":1}' }
        @{ Name = 'JSON text holding an unpaired surrogate'; Data = "{""x"":""$([char]0xD800)""}" }
    ) {
        { Publish-BmadEvent -Store $store -Type a.b -Data $Data -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventInvalidData' 'PublishBmadEventCommand')
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'keeps a complete surrogate pair (an emoji) as it is' {
        $published = Publish-BmadEvent -Store $store -Type a.b -Data @{ x = "$([char]0xD83D)$([char]0xDE00)" }
        (Get-BmadEvent -Store $store).Data.x | Should -BeExactly "$([char]0xD83D)$([char]0xDE00)"
        $published.Seq | Should -Be 1
    }

    It 'names the cycle in a self-referencing object instead of calling it a PSObject' {
        $node = [pscustomobject]@{ name = 'root'; children = @() }
        $node.children = @([pscustomobject]@{ name = 'child'; parent = $node })
        $err = $null
        try { Publish-BmadEvent -Store $store -Type a.b -Data $node -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be (Get-Fqid 'PublishBmadEventUnserializableData' 'PublishBmadEventCommand')
        $err.Exception.Message | Should -Match 'refers to itself at data\.children\[0\]\.parent'
        $err.Exception.Message | Should -Not -Match 'PSObject'
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'refuses a piped hashtable with a key it does not know (a typo is not silently dropped)' {
        $err = $null
        try { @{ Type = 'a.b'; Data = @{ x = 1 }; Foo = 'bar' } | Publish-BmadEvent -Store $store -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be (Get-Fqid 'PublishBmadEventInvalidArgument' 'PublishBmadEventCommand')
        $err.Exception.Message | Should -Match "'Foo'"
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'says the event has no Type for a piped object without one' -ForEach @(
        @{ Name = 'hashtable'; Item = @{ Data = @{ x = 1 } } }
        @{ Name = 'object'; Item = [pscustomobject]@{ Data = @{ x = 1 } } }
    ) {
        $err = $null
        try { $Item | Publish-BmadEvent -Store $store -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be (Get-Fqid 'PublishBmadEventInvalidEventType' 'PublishBmadEventCommand')
        $err.Exception.Message | Should -Match 'has no Type'
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'checks the data against the store''s limits with -WhatIf too (everything but the append)' {
        $small = New-TestStore -Settings @{ MaxEventBytes = 2048; MaxDepth = 3 }
        { Publish-BmadEvent -Store $small -Type a.b -Data @{ blob = 'x' * 5000 } -WhatIf -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventEventTooLarge' 'PublishBmadEventCommand')
        { Publish-BmadEvent -Store $small -Type a.b -Data @{ l1 = @{ l2 = @{ l3 = @{ l4 = 1 } } } } -WhatIf -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventDataTooDeep' 'PublishBmadEventCommand')
        { Publish-BmadEvent -Store $small -Type a.b -Data @{ x = 1 } -WhatIf -ErrorAction Stop } | Should -Not -Throw
        (Get-BmadStoreStatistics -Store $small).TotalEvents | Should -Be 0
    }

    It 'refuses piped text that is not an event object' {
        { 'just some text' | Publish-BmadEvent -Store $store -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventInvalidArgument' 'PublishBmadEventCommand')
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
    }

    It 'publishes large pipelines in batches, every event exactly once' {
        $events = 1..1200 | ForEach-Object { @{ Type = 'bulk.item'; Data = @{ i = $_ } } } | Publish-BmadEvent -Store $store -BatchSize 500
        $events.Count | Should -Be 1200
        $events.Seq | Should -Be (1..1200)
        $stored = Get-BmadEvent -Store $store
        $stored.Count | Should -Be 1200
        (($stored | ForEach-Object { $_.Data.i }) | Sort-Object -Unique).Count | Should -Be 1200
    }

    It 'copies events to another store through the pipeline' {
        $null = Publish-BmadEvent -Store $store -Type story.created -Source architect -Data @{ story = 'S-9'; tags = @('x') } -CorrelationId c-9
        $null = Publish-BmadEvent -Store $store -Type story.closed -Source qa -Data @{ story = 'S-9' }
        $target = New-TestStore
        $copied = Get-BmadEvent -Store $store | Publish-BmadEvent -Store $target
        $copied.Count | Should -Be 2
        $original = Get-BmadEvent -Store $store
        $inTarget = Get-BmadEvent -Store $target
        $inTarget.Type | Should -Be $original.Type
        $inTarget.Source | Should -Be $original.Source
        $inTarget[0].CorrelationId | Should -Be 'c-9'
        $inTarget[1].CorrelationId | Should -BeNullOrEmpty
        $inTarget.DataJson | Should -Be $original.DataJson
        $inTarget[0].Id | Should -Not -Be $original[0].Id
    }

    It 'fails with StoreNotFound for a missing store' {
        { Publish-BmadEvent -Store (New-TestStorePath) -Type a.b -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'PublishBmadEventStoreNotFound' 'PublishBmadEventCommand')
    }

    It 'fails with LockTimeout while another writer holds the lock, and writes nothing' {
        $lockPath = [System.IO.Path]::Combine($store, 'writer.lock')
        # FileShare.None is the writers' lock (flock LOCK_EX on Unix, a sharing lock on Windows).
        $holder = [System.IO.File]::Open($lockPath, 'OpenOrCreate', 'ReadWrite', 'None')
        try {
            $err = $null
            try {
                Publish-BmadEvent -Store $store -Type a.b -LockTimeout 0.3 -ErrorAction Stop
            }
            catch {
                $err = $_
            }
            $err | Should -Not -BeNullOrEmpty
            $err.FullyQualifiedErrorId | Should -Be (Get-Fqid 'PublishBmadEventLockTimeout' 'PublishBmadEventCommand')
            $err.CategoryInfo.Category | Should -Be 'ResourceBusy'
        }
        finally {
            $holder.Dispose()
        }
        (Get-BmadStoreStatistics -Store $store).TotalEvents | Should -Be 0
        (Publish-BmadEvent -Store $store -Type a.b).Seq | Should -Be 1
    }

    It 'publishes to $env:BMADGUARD_STORE when -Store is not given' {
        $env:BMADGUARD_STORE = $store
        $null = Publish-BmadEvent -Type env.default -Data @{ x = 1 }
        (Get-BmadEvent -Store $store).Type | Should -Be 'env.default'
    }

    It 'resolves a relative -Store against the PowerShell location' {
        Push-Location -LiteralPath ([System.IO.Path]::GetDirectoryName($store))
        try {
            $null = Publish-BmadEvent -Store ([System.IO.Path]::GetFileName($store)) -Type rel.path
        }
        finally {
            Pop-Location
        }
        (Get-BmadEvent -Store $store).Type | Should -Be 'rel.path'
    }

    It 'leaves every stored line checksummed and complete' {
        $null = 1..3 | ForEach-Object { @{ Type = 'line.check'; Data = @{ i = $_ } } } | Publish-BmadEvent -Store $store
        $lines = @(Get-StoreLines $store)
        $lines.Count | Should -Be 4   # the segment header and three records
        $lines | Select-Object -Skip 1 | ForEach-Object { $_ | Should -Match '^\{"seq":\d+,.*,"crc":"[0-9a-f]{8}"\}$' }
    }
}

Describe 'Get-BmadEvent' {
    BeforeAll {
        $store = New-TestStore
        $null = @(
            @{ Type = 'story.created'; Source = 'architect'; Data = @{ story = 'S-1' } }
            @{ Type = 'story.created'; Source = 'architect'; Data = @{ story = 'S-2' } }
            @{ Type = 'story.reviewed'; Source = 'qa'; Data = @{ story = 'S-1'; verdict = 'ok' } }
            @{ Type = 'workflow.started'; Source = 'dev-1'; Data = @{ run = 7 } }
            @{ Type = 'story.created'; Source = 'dev-2'; Data = @{ story = 'S-3' } }
            @{ Type = 'story.reviewed'; Source = 'qa'; Data = @{ story = 'S-2'; verdict = 'rework' } }
        ) | Publish-BmadEvent -Store $store
    }

    It 'returns every event in seq order' {
        $events = Get-BmadEvent -Store $store
        $events.Seq | Should -Be (1..6)
        $events[0] | Should -BeOfType ([BmadGuard.BmadEvent])
    }

    It 'filters -Type <Pattern> to <Expected> events' -ForEach @(
        @{ Pattern = 'story.*'; Expected = 5 }
        @{ Pattern = 'STORY.CREATED'; Expected = 3 }
        @{ Pattern = 'story.re*'; Expected = 2 }
        @{ Pattern = '*.started'; Expected = 1 }
        @{ Pattern = 'story.create?'; Expected = 3 }
        @{ Pattern = 'nothing.*'; Expected = 0 }
    ) {
        @(Get-BmadEvent -Store $store -Type $Pattern).Count | Should -Be $Expected
    }

    It 'filters by source with wildcards' {
        (Get-BmadEvent -Store $store -Source 'dev-*').Seq | Should -Be @(4, 5)
        (Get-BmadEvent -Store $store -Source 'qa' -Type 'story.*').Seq | Should -Be @(3, 6)
    }

    It 'returns the last N matching events with -Last' {
        (Get-BmadEvent -Store $store -Last 2).Seq | Should -Be @(5, 6)
        (Get-BmadEvent -Store $store -Type story.created -Last 2).Seq | Should -Be @(2, 5)
        Get-BmadEvent -Store $store -Last 0 | Should -BeNullOrEmpty
    }

    It 'returns events after a seq with -After' {
        (Get-BmadEvent -Store $store -After 4).Seq | Should -Be @(5, 6)
    }

    It 'filters by time with -Since' {
        @(Get-BmadEvent -Store $store -Since (Get-Date).AddHours(-1)).Count | Should -Be 6
        Get-BmadEvent -Store $store -Since (Get-Date).AddHours(1) | Should -BeNullOrEmpty
    }

    It 'gives Data as an ordered hashtable' {
        $published = Get-BmadEvent -Store $store -After 2 -Last 1 -Type story.reviewed
        $published.Data | Should -BeOfType ([System.Collections.Specialized.OrderedDictionary])
        $published.Data.verdict | Should -Be 'rework'
        $published.Data['STORY'] | Should -Be 'S-2'
    }

    It 'gives a consumer each event once, and resumes where it stopped' {
        $consumerStore = New-TestStore
        $null = 1..3 | ForEach-Object { @{ Type = 'work.item'; Data = @{ i = $_ } } } | Publish-BmadEvent -Store $consumerStore
        (Get-BmadEvent -Store $consumerStore -Consumer worker).Seq | Should -Be @(1, 2, 3)
        Get-BmadEvent -Store $consumerStore -Consumer worker | Should -BeNullOrEmpty
        $null = Publish-BmadEvent -Store $consumerStore -Type work.item -Data @{ i = 4 }
        (Get-BmadEvent -Store $consumerStore -Consumer worker).Seq | Should -Be @(4)
        # Another consumer has its own position.
        (Get-BmadEvent -Store $consumerStore -Consumer auditor).Seq | Should -Be @(1, 2, 3, 4)
        [System.IO.Path]::Combine($consumerStore, 'consumers', 'worker.json') | Should -Exist
    }

    It 'keeps a consumer position per -Type filter, so a filtered read never skips events for an unfiltered one' {
        $filterStore = New-TestStore
        $null = 1..6 | ForEach-Object { @{ Type = $(if ($_ % 2) { 'story.ready' } else { 'other.thing' }); Data = @{ i = $_ } } } | Publish-BmadEvent -Store $filterStore
        (Get-BmadEvent -Store $filterStore -Consumer reviewer -Type 'story.*').Seq | Should -Be @(1, 3, 5)
        Get-BmadEvent -Store $filterStore -Consumer reviewer -Type 'story.*' | Should -BeNullOrEmpty
        (Get-BmadEvent -Store $filterStore -Consumer reviewer).Seq | Should -Be @(1, 2, 3, 4, 5, 6)
        { Get-BmadEvent -Store $filterStore -Consumer reviewer -Last 1 -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'GetBmadEventInvalidArgument' 'GetBmadEventCommand')
    }

    It 'delivers every intact event around a damaged record, with a non-terminating GetBmadEventDamagedRecord error' {
        $damagedStore = New-TestStore
        $null = 1..50 | ForEach-Object { @{ Type = 'work.item'; Data = @{ i = $_; pad = 'pppppppp' } } } | Publish-BmadEvent -Store $damagedStore
        $segment = Get-ChildItem -Path ([System.IO.Path]::Combine($damagedStore, 'segments')) -Filter 'segment-*.jsonl' | Select-Object -First 1
        $bytes = [System.IO.File]::ReadAllBytes($segment.FullName)
        $text = [System.Text.Encoding]::UTF8.GetString($bytes)
        $at = $text.IndexOf('pppp', $text.IndexOf('{"seq":20,'))
        $bytes[$at] = $bytes[$at] -bxor 1
        [System.IO.File]::WriteAllBytes($segment.FullName, $bytes)

        $read = Get-BmadEvent -Store $damagedStore -ErrorAction SilentlyContinue -ErrorVariable damage
        $read.Seq | Should -Be (@(1..19) + @(21..50))
        $damage.Count | Should -Be 1
        $damage[0].FullyQualifiedErrorId | Should -Be (Get-Fqid 'GetBmadEventDamagedRecord' 'GetBmadEventCommand')
        $damage[0].Exception.Message | Should -Match 'seq 20 '

        (Get-BmadEvent -Store $damagedStore -Last 3 -ErrorAction SilentlyContinue).Seq | Should -Be @(48, 49, 50)
        (Get-BmadEvent -Store $damagedStore -After 30 -ErrorAction SilentlyContinue -ErrorVariable none).Seq | Should -Be @(31..50)
        $none | Should -BeNullOrEmpty

        # A consumer stops just before the damage, and stays there.
        (Get-BmadEvent -Store $damagedStore -Consumer worker -ErrorAction SilentlyContinue).Seq | Should -Be @(1..19)
        Get-BmadEvent -Store $damagedStore -Consumer worker -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (Get-Content -Raw -LiteralPath ([System.IO.Path]::Combine($damagedStore, 'consumers', 'worker.json')) | ConvertFrom-Json).seq | Should -Be 19

        # Writers carry on; readers see what they write.
        (Publish-BmadEvent -Store $damagedStore -Type work.item).Seq | Should -Be 51
        (Get-BmadEvent -Store $damagedStore -After 50 -ErrorAction SilentlyContinue).Seq | Should -Be @(51)
    }

    It 'streams new events with -Follow until stopped, as Ctrl+C does' {
        $followStore = New-TestStore
        $null = Publish-BmadEvent -Store $followStore -Type live.before
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($Manifest, $Store)
                    Import-Module -Name $Manifest
                    Get-BmadEvent -Store $Store -Follow
                }).AddArgument($script:ManifestPath).AddArgument($followStore)
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $noInput = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $noInput.Complete()
            $async = $ps.BeginInvoke($noInput, $output)

            $deadline = [datetime]::UtcNow.AddSeconds(30)
            while ($output.Count -lt 1 -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
            $null = Publish-BmadEvent -Store $followStore -Type live.after -Data @{ n = 2 }
            while ($output.Count -lt 2 -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }

            $ps.Stop()   # what Ctrl+C does: StopProcessing cancels the follow
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $output.Type | Should -Be @('live.before', 'live.after')
            $ps.Streams.Error.Count | Should -Be 0
            $async.IsCompleted | Should -BeTrue
        }
        finally {
            $ps.Dispose()
        }
    }

    It 'fails with StoreNotFound for a missing store' {
        { Get-BmadEvent -Store (New-TestStorePath) -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'GetBmadEventStoreNotFound' 'GetBmadEventCommand')
    }

    It 'fails with InvalidConsumerName for a bad consumer name' {
        { Get-BmadEvent -Store $store -Consumer 'bad/name' -ErrorAction Stop } |
            Should -Throw -ErrorId (Get-Fqid 'GetBmadEventInvalidConsumerName' 'GetBmadEventCommand')
    }

    It 'reports a damaged record with GetBmadEventDamagedRecord, naming the file' {
        $damaged = New-TestStore
        $null = 1..3 | ForEach-Object { @{ Type = 'dmg.item'; Data = @{ text = 'abcdefgh' } } } | Publish-BmadEvent -Store $damaged
        $segment = (Get-ChildItem -LiteralPath ([System.IO.Path]::Combine($damaged, 'segments')) -Filter 'segment-*.jsonl')[0].FullName
        $lines = [System.IO.File]::ReadAllLines($segment)
        $lines[2] = $lines[2].Replace('abcdefgh', 'abcdefgX')   # flip a byte in the second record
        [System.IO.File]::WriteAllText($segment, (($lines -join "`n") + "`n"))
        $err = $null
        try { Get-BmadEvent -Store $damaged -ErrorAction Stop | Out-Null } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be (Get-Fqid 'GetBmadEventDamagedRecord' 'GetBmadEventCommand')
        $err.Exception.Message | Should -BeLike "*$([System.IO.Path]::GetFileName($segment))*"
        $err.Exception.Message | Should -BeLike '*seq 2 *'
    }

    It 'completes -Type and -Source from recent events' {
        $line = "Get-BmadEvent -Store '$store' -Type story."
        $types = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText
        $types | Should -Contain 'story.created'
        $types | Should -Contain 'story.reviewed'
        $types | Should -Not -Contain 'workflow.started'

        $line = "Publish-BmadEvent -Store '$store' -Type a.b -Source dev"
        $sources = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText
        $sources | Should -Be @('dev-1', 'dev-2')
    }
}

Describe 'Get-BmadStoreStatistics' {
    It 'reports counts, ranges and sizes' {
        $store = New-TestStore
        $null = @(
            @{ Type = 'story.created'; Source = 'architect' }
            @{ Type = 'story.created'; Source = 'dev-1' }
            @{ Type = 'story.reviewed'; Source = 'qa' }
        ) | Publish-BmadEvent -Store $store
        $stats = Get-BmadStoreStatistics -Store $store
        $stats | Should -BeOfType ([BmadGuard.BmadStoreStatistics])
        $stats.TotalEvents | Should -Be 3
        $stats.FirstSeq | Should -Be 1
        $stats.LastSeq | Should -Be 3
        $stats.ByType['story.created'] | Should -Be 2
        @($stats.ByType.Keys)[0] | Should -Be 'story.created'   # most frequent first
        $stats.BySource['qa'] | Should -Be 1
        $stats.Segments | Should -Be 1
        $stats.BytesOnDisk | Should -BeGreaterThan 0
        $stats.QuarantineFiles | Should -Be 0
        $stats.LastTimestamp | Should -BeOfType ([datetimeoffset])
    }

    It 'reports an empty store with no seqs' {
        $stats = Get-BmadStoreStatistics -Store (New-TestStore)
        $stats.TotalEvents | Should -Be 0
        $stats.FirstSeq | Should -BeNullOrEmpty
        $stats.LastTimestamp | Should -BeNullOrEmpty
    }

    It 'takes stores from the pipeline, including New-BmadStore output' {
        $stats = New-BmadStore -Path (New-TestStorePath) | Get-BmadStoreStatistics
        $stats.TotalEvents | Should -Be 0
    }

    It 'reports a missing store without stopping the others' {
        $good = New-TestStore
        $missing = New-TestStorePath
        $stats = $missing, $good | Get-BmadStoreStatistics -ErrorVariable errors -ErrorAction SilentlyContinue
        @($stats).Count | Should -Be 1
        $stats.Store | Should -Be $good
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be (Get-Fqid 'GetBmadStoreStatisticsStoreNotFound' 'GetBmadStoreStatisticsCommand')
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}
