# Every ```powershell and ```bash block of README.md and docs/*.md runs as written, in a fresh temporary directory with
# a fresh HOME: the built CLI is on PATH as `bmadguard` (a wrapper script), the built module is importable by name
# (Import-Module BmadGuard), and nothing else of the repository is there. A block that cannot run there (it builds
# the repository, runs the whole test suite, installs a global tool, or runs until stopped) is marked, sparingly,
# with an HTML comment on the line before its fence:
#     <!-- not-run: <the reason> -->
# The CLI is $env:BMADGUARD_CLI (bmadguard.dll or an executable), else the Release build under src/BmadGuard.Cli/bin;
# without it the bash blocks are skipped.

BeforeDiscovery {
    $root = [System.IO.Path]::GetFullPath([System.IO.Path]::Combine($PSScriptRoot, '..'))
    $files = @([System.IO.Path]::Combine($root, 'README.md')) + @(Get-ChildItem -Path ([System.IO.Path]::Combine($root, 'docs')) -Filter '*.md' -File | ForEach-Object FullName)
    $script:Blocks = foreach ($file in $files) {
        $lines = [System.IO.File]::ReadAllLines($file)
        for ($i = 0; $i -lt $lines.Count; $i++) {
            if ($lines[$i] -match '^```(powershell|bash)\s*$') {
                $language = $Matches[1]
                $start = $i
                $body = [System.Collections.Generic.List[string]]::new()
                for ($i++; $i -lt $lines.Count -and $lines[$i] -notmatch '^```\s*$'; $i++) { $body.Add($lines[$i]) }
                $marker = if ($start -gt 0) { [regex]::Match($lines[$start - 1], '^<!--\s*not-run:\s*(.+?)\s*-->') } else { $null }
                @{
                    Name     = "$([System.IO.Path]::GetRelativePath($root, $file)):$($start + 1) ($language)"
                    Language = $language
                    Code     = $body -join "`n"
                    NotRun   = $(if ($marker -and $marker.Success) { $marker.Groups[1].Value } else { $null })
                }
            }
        }
    }
    $script:RunBlocks = @($script:Blocks | Where-Object { -not $_.NotRun })
    $script:MarkedBlocks = @($script:Blocks | Where-Object { $_.NotRun })
    $script:CliPath = if ($env:BMADGUARD_CLI) { $env:BMADGUARD_CLI } else {
        Get-ChildItem -Path ([System.IO.Path]::Combine($root, 'src', 'BmadGuard.Cli', 'bin', 'Release')) -Recurse -Filter 'bmadguard.dll' -ErrorAction SilentlyContinue |
            Sort-Object -Property LastWriteTimeUtc -Descending | Select-Object -First 1 -ExpandProperty FullName
    }
    $script:NoCli = -not $script:CliPath
}

BeforeAll {
    $script:ManifestPath = if ($env:BMADGUARD_MODULE_PATH) { $env:BMADGUARD_MODULE_PATH } else { [System.IO.Path]::Combine($PSScriptRoot, '..', 'output', 'BmadGuard', 'BmadGuard.psd1') }
    $root = [System.IO.Path]::GetFullPath([System.IO.Path]::Combine($PSScriptRoot, '..'))
    $cli = if ($env:BMADGUARD_CLI) { $env:BMADGUARD_CLI } else {
        Get-ChildItem -Path ([System.IO.Path]::Combine($root, 'src', 'BmadGuard.Cli', 'bin', 'Release')) -Recurse -Filter 'bmadguard.dll' -ErrorAction SilentlyContinue |
            Sort-Object -Property LastWriteTimeUtc -Descending | Select-Object -First 1 -ExpandProperty FullName
    }

    # bin/bmadguard: the built CLI under the name the docs use.
    $script:BinDir = [System.IO.Path]::Combine($TestDrive, 'bin')
    $null = New-Item -ItemType Directory -Path $script:BinDir -Force
    if ($cli -and -not $IsWindows) {
        $wrapper = [System.IO.Path]::Combine($script:BinDir, 'bmadguard')
        $run = if ($cli -like '*.dll') { "exec dotnet '$cli' `"`$@`"" } else { "exec '$cli' `"`$@`"" }
        [System.IO.File]::WriteAllText($wrapper, "#!/bin/sh`n$run`n")
        [System.IO.File]::SetUnixFileMode($wrapper, [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
    }

    # modules/BmadGuard: the built module, importable by name.
    $script:ModulesDir = [System.IO.Path]::Combine($TestDrive, 'modules')
    $null = New-Item -ItemType Directory -Path $script:ModulesDir -Force
    $moduleDir = [System.IO.Path]::GetDirectoryName([System.IO.Path]::GetFullPath($script:ManifestPath))
    Copy-Item -LiteralPath $moduleDir -Destination ([System.IO.Path]::Combine($script:ModulesDir, 'BmadGuard')) -Recurse

    $script:BlockNumber = 0
    function Invoke-DocBlock([string] $Language, [string] $Code) {
        $script:BlockNumber++
        $work = [System.IO.Path]::Combine($TestDrive, "block$($script:BlockNumber)")
        $homeDir = [System.IO.Path]::Combine($work, 'home')
        $null = New-Item -ItemType Directory -Path ([System.IO.Path]::Combine($work, 'run')), $homeDir -Force
        $psi = [System.Diagnostics.ProcessStartInfo]::new()
        $psi.WorkingDirectory = [System.IO.Path]::Combine($work, 'run')
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.UseShellExecute = $false
        foreach ($name in @('BMADGUARD_STORE', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'LOCALAPPDATA')) { $null = $psi.Environment.Remove($name) }
        $psi.Environment['HOME'] = $homeDir
        $psi.Environment['PATH'] = "$($script:BinDir)$([System.IO.Path]::PathSeparator)$($env:PATH)"
        $psi.Environment['PSModulePath'] = "$($script:ModulesDir)$([System.IO.Path]::PathSeparator)$($env:PSModulePath)"
        if ($Language -eq 'bash') {
            $psi.FileName = 'bash'
            $psi.ArgumentList.Add('-euo')
            $psi.ArgumentList.Add('pipefail')
            $psi.ArgumentList.Add('-c')
            $psi.ArgumentList.Add($Code)
        }
        else {
            $exe = (Get-Process -Id $PID).Path
            $psi.FileName = $exe
            if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add([System.IO.Path]::Combine($PSHOME, 'pwsh.dll')) }
            foreach ($a in @('-NoProfile', '-NonInteractive', '-Command', "`$ErrorActionPreference = 'Stop'`n$Code")) { $psi.ArgumentList.Add($a) }
        }
        $process = [System.Diagnostics.Process]::Start($psi)
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        $process.WaitForExit()
        [pscustomobject]@{ ExitCode = $process.ExitCode; Output = $stdout.Result + $stderr.Result }
    }
}

Describe 'Documented code blocks run as written' {
    It '<Name>' -ForEach $script:RunBlocks -Skip:($IsWindows) {
        if ($Language -eq 'bash' -and $script:NoCli) { Set-ItResult -Skipped -Because 'the CLI is not built'; return }
        $result = Invoke-DocBlock -Language $Language -Code $Code
        $result.ExitCode | Should -Be 0 -Because $result.Output
    }

    It 'marks a block it does not run with a reason: <Name> (<NotRun>)' -ForEach $script:MarkedBlocks {
        $NotRun.Length | Should -BeGreaterThan 10
    }
}
