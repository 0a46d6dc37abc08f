# Pester 5 tests of what users copy: every call to a BmadGuard command in the docs (docs/**/*.md, README.md), the
# module's psm1, build.ps1 and these tests binds to the command's real parameters (PowerShell's own
# StaticParameterBinder: no unknown or ambiguous parameter, no argument without a position to take it), and every
# PowerShell file parses with PowerShell's own parser. Run with: ./build.ps1 -Task Test (PowerShell 7.4+ and Pester 5).

BeforeDiscovery {
    $root = [System.IO.Path]::GetFullPath([System.IO.Path]::Combine($PSScriptRoot, '..'))
    $script:Sources = @(
        @(Get-ChildItem -LiteralPath ([System.IO.Path]::Combine($root, 'docs')) -Recurse -Filter '*.md' -File)
        @(Get-Item -LiteralPath ([System.IO.Path]::Combine($root, 'README.md')))
        @(Get-Item -LiteralPath ([System.IO.Path]::Combine($root, 'module', 'BmadGuard.psm1')))
        @(Get-Item -LiteralPath ([System.IO.Path]::Combine($root, 'build.ps1')))
        @(Get-ChildItem -LiteralPath $PSScriptRoot -Filter '*.ps1' -File)
    ) | ForEach-Object { @{ Name = $_.FullName.Substring($root.Length + 1); Path = $_.FullName } }
    $script:PowerShellFiles = @(
        @(Get-Item -LiteralPath ([System.IO.Path]::Combine($root, 'BmadGuard.psd1')))
        @(Get-Item -LiteralPath ([System.IO.Path]::Combine($root, 'build.ps1')))
        @(Get-ChildItem -LiteralPath ([System.IO.Path]::Combine($root, 'module')) -File | Where-Object Extension -in '.psm1', '.ps1', '.psd1')
        @(Get-ChildItem -LiteralPath $PSScriptRoot -Filter '*.ps1' -File)
    ) | ForEach-Object { @{ Name = $_.FullName.Substring($root.Length + 1); Path = $_.FullName } }
    # Every command the manifest exports (read without importing: discovery runs before BeforeAll).
    $manifest = Import-PowerShellDataFile -LiteralPath ([System.IO.Path]::Combine($root, 'BmadGuard.psd1'))
    $script:Commands = @($manifest.CmdletsToExport) + @($manifest.FunctionsToExport) | ForEach-Object { @{ Command = $_ } }
}

BeforeAll {
    # The built module (build.ps1 -Task Pester names it in BMADGUARD_MODULE_PATH), else output/BmadGuard.
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    Import-Module -Name $script:ManifestPath -Force -ErrorAction Stop
    $script:CommandNames = @(Get-Command -Module BmadGuard | ForEach-Object Name)

    # The PowerShell in a file: a script whole, or a markdown file's ```powershell blocks (with the line each starts on).
    function Get-PowerShellBlock([string] $Path) {
        $text = [System.IO.File]::ReadAllText($Path)
        if ($Path -notlike '*.md') {
            return , @(@{ Code = $text; FirstLine = 1 })
        }
        $blocks = foreach ($m in [regex]::Matches($text, '(?ms)^```(?:powershell|pwsh|ps1)[ \t]*\r?\n(.*?)^```')) {
            @{ Code = $m.Groups[1].Value; FirstLine = $text.Substring(0, $m.Groups[1].Index).Split("`n").Count }
        }
        , @($blocks)
    }

    # "line: Command: problem" for every call to a BmadGuard command that does not bind. A call that splats cannot be
    # bound statically beyond its named parameters, so its positional complaints are not reported.
    function Get-BindingProblem([string] $Path) {
        foreach ($block in (Get-PowerShellBlock $Path)) {
            $tokens = $null
            $errors = $null
            # Markdown examples hold output after the command (PlatyPS style): a block need not parse whole.
            $ast = [System.Management.Automation.Language.Parser]::ParseInput($block.Code, [ref] $tokens, [ref] $errors)
            $calls = $ast.FindAll({ param($node) $node -is [System.Management.Automation.Language.CommandAst] }, $true)
            foreach ($call in $calls) {
                $name = $call.GetCommandName()
                if ($name -notin $script:CommandNames) {
                    continue
                }
                $splats = @($call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.VariableExpressionAst] -and $_.Splatted })
                $result = [System.Management.Automation.Language.StaticParameterBinder]::BindCommand($call, $true)
                foreach ($key in $result.BindingExceptions.Keys) {
                    $message = $result.BindingExceptions[$key].BindingException.Message
                    if ($splats.Count -gt 0 -and $message -match 'positional parameter') {
                        continue
                    }
                    '{0}: {1}: {2}' -f ($block.FirstLine + $call.Extent.StartLineNumber - 1), $name, $message
                }
            }
        }
    }
}

AfterAll {
    Remove-Module -Name BmadGuard -Force -ErrorAction SilentlyContinue
}

Describe 'Calls to BmadGuard commands bind to their parameters' {
    It '<Name>' -ForEach $script:Sources {
        Get-BindingProblem $Path | Should -BeNullOrEmpty
    }

    It 'reports a call that would not bind (the check itself)' {
        $file = [System.IO.Path]::Combine($TestDrive, 'Mistakes.md')
        $fence = '```'
        Set-Content -LiteralPath $file -Value @(
            "${fence}powershell"
            'Get-BmadEvent -Store ./store -Lastt 5'            # unknown parameter
            'Restore-BmadStore -Store ./store -S 2 -Force'     # ambiguous: -Sequence, -Store
            'Publish-BmadEvent a.b @{} extra'                  # a third positional argument
            'Get-BmadEvent @query -Last 1'                     # splatted: fine
            $fence
        )
        $problems = @(Get-BindingProblem $file)
        $problems.Count | Should -Be 3
        $problems[0] | Should -Match '^2: Get-BmadEvent: .*Lastt'
        $problems[1] | Should -Match '^3: Restore-BmadStore: .*ambiguous'
        $problems[2] | Should -Match '^4: Publish-BmadEvent: .*extra'
    }
}

Describe 'Get-Help, as a user sees it' {
    It '<Command> has a synopsis, a description, two examples and every parameter described' -ForEach $script:Commands {
        $help = Get-Help -Name $Command -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis.Trim() | Should -Not -BeLike "$Command *"   # without help, the synopsis is the syntax line
        ($help.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $inCode = @((Get-Command -Name $Command).Parameters.Keys | Where-Object { $_ -notin $common } | Sort-Object)
        $inHelp = @($help.Parameters.Parameter | Where-Object { $_ } | ForEach-Object Name | Where-Object { $_ -notin $common } | Sort-Object)
        $inHelp | Should -Be $inCode
        @($help.Parameters.Parameter | Where-Object { $_ -and -not ($_.Description | Out-String).Trim() } | ForEach-Object Name) |
            Should -BeNullOrEmpty
    }
}

Describe 'PowerShell files parse with PowerShell''s own parser' {
    It '<Name>' -ForEach $script:PowerShellFiles {
        $tokens = $null
        $errors = $null
        $null = [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref] $tokens, [ref] $errors)
        @($errors | ForEach-Object { '{0}: {1}' -f $_.Extent.StartLineNumber, $_.Message }) | Should -BeNullOrEmpty
    }
}
