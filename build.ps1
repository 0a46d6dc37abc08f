<#
.SYNOPSIS
    Builds, tests, documents and packages the BmadGuard PowerShell module.
.DESCRIPTION
    Build    assembles output/BmadGuard/: BmadGuard.psd1, the psm1 and format file, bin/<tfm>/BmadGuard.dll with
             its dependencies in bin/<tfm>/dependencies/, and en-US help (dotnet build/BmadGuard.Module.proj
             -t:AssembleModule, which also checks that no test or build file is in the folder).
    Test     Build, then `dotnet test BmadGuard.slnx`, then Pester 5 on tests/*.Tests.ps1 against the built module
             (in a child PowerShell, so the module's dlls are not held by this session), when Pester 5 is installed.
    Pester   Build, then only the Pester tests (as in Test); results in TestResults/pester.xml (NUnit XML). Fails
             when Pester 5 is not installed. With -Framework netstandard2.0 the suite runs against the Windows
             PowerShell 5.1 binaries, loaded in this PowerShell 7 (a copy of the module in output/pester-netstandard2.0
             whose bin/net8.0 holds them; results in TestResults/pester-netstandard2.0.xml): the nearest to 5.1 that
             runs where Windows does not.
    Docs     en-US MAML help from docs/en-US: PlatyPS's New-ExternalHelp when platyPS is installed, else the C#
             generator (src/BmadGuard.HelpGen) through the Docs target.
    Package  Build (+ PlatyPS help when available), then output/packages/BmadGuard.<version>.nupkg and the
             bmadguard .NET tool package. output/BmadGuard is the folder to hand to Publish-PSResource.
.EXAMPLE
    ./build.ps1 -Task Test
.EXAMPLE
    ./build.ps1 -Task Package; Publish-PSResource -Path ./output/BmadGuard -Repository PSGallery -ApiKey $key
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Pester', 'Docs', 'Package')]
    [string] $Task = 'Build',

    [string] $Configuration = 'Release',

    # -Task Pester: which build of the cmdlets the suite loads (see Pester above).
    [ValidateSet('net8.0', 'netstandard2.0')]
    [string] $Framework = 'net8.0'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$ModuleName = 'BmadGuard'
$Root = $PSScriptRoot
$OutputRoot = Join-Path -Path $Root -ChildPath 'output'
$ModuleDir = Join-Path -Path $OutputRoot -ChildPath $ModuleName
$ModuleProj = Join-Path -Path $Root -ChildPath 'build/BmadGuard.Module.proj'
$DocsDir = Join-Path -Path $Root -ChildPath 'docs/en-US'

# Every dotnet switch is passed QUOTED ('-o', '-t:Build'): unquoted, PowerShell's binder would take it for a
# parameter of this advanced function: '-o' is ambiguous (-OutVariable, -OutBuffer) and fails the call.
function Invoke-Dotnet {
    param([Parameter(ValueFromRemainingArguments)] [string[]] $Arguments)
    Write-Host "dotnet $($Arguments -join ' ')" -ForegroundColor Cyan
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw "dotnet $($Arguments -join ' ') failed with exit code $LASTEXITCODE"
    }
}

function Get-PlatyPS {
    Get-Module -ListAvailable -Name platyPS | Sort-Object -Property Version -Descending | Select-Object -First 1
}

function Invoke-BuildTask {
    Invoke-Dotnet build $ModuleProj '-t:AssembleModule' "-p:Configuration=$Configuration" '-nologo'
}

function Invoke-DocsTask {
    $platyPS = Get-PlatyPS
    if ($platyPS) {
        Import-Module -Name $platyPS.Path -Force
        $help = Join-Path -Path $ModuleDir -ChildPath 'en-US'
        if (Test-Path -LiteralPath $help) {
            Remove-Item -LiteralPath $help -Recurse -Force
        }
        New-Item -ItemType Directory -Path $help -Force | Out-Null
        # Writes BmadGuard.dll-Help.xml / BmadGuard-Help.xml (per 'external help file') and about_*.help.txt.
        New-ExternalHelp -Path $DocsDir -OutputPath $help -Force | ForEach-Object { Write-Host "help: $($_.FullName)" }
    }
    else {
        Write-Host 'platyPS is not installed: building the MAML help with the C# generator (src/BmadGuard.HelpGen).'
        Invoke-Dotnet build $ModuleProj '-t:Docs' "-p:Configuration=$Configuration" '-nologo'
    }
}

function Invoke-TestTask {
    Invoke-BuildTask
    Invoke-Dotnet test (Join-Path -Path $Root -ChildPath 'BmadGuard.slnx') '-c' $Configuration
    Invoke-PesterTests
}

function Invoke-PesterTests {
    param([switch] $Required)

    $pester = Get-Module -ListAvailable -Name Pester |
        Where-Object { $_.Version -ge [version]'5.0.0' } |
        Sort-Object -Property Version -Descending |
        Select-Object -First 1
    if (-not $pester) {
        if ($Required) {
            throw 'Pester 5 is not installed (Install-PSResource Pester): tests/*.Tests.ps1 cannot run.'
        }
        Write-Warning 'Pester 5 is not installed (Install-PSResource Pester): tests/*.Tests.ps1 were not run.'
        return
    }

    $testFiles = @(Get-ChildItem -Path (Join-Path -Path $Root -ChildPath 'tests') -Filter '*.Tests.ps1' -File | ForEach-Object { $_.FullName })
    if ($testFiles.Count -eq 0) {
        Write-Warning 'No tests/*.Tests.ps1 files found.'
        return
    }

    $results = Join-Path -Path $Root -ChildPath 'TestResults'
    New-Item -ItemType Directory -Path $results -Force | Out-Null
    $manifest = Join-Path -Path $ModuleDir -ChildPath "$ModuleName.psd1"
    $resultFile = Join-Path -Path $results -ChildPath 'pester.xml'
    if ($Framework -ne 'net8.0') {
        # The same module with the other build of the cmdlets where PowerShell 7 looks for them.
        $copyRoot = Join-Path -Path $OutputRoot -ChildPath "pester-$Framework"
        if (Test-Path -LiteralPath $copyRoot) {
            Remove-Item -LiteralPath $copyRoot -Recurse -Force
        }
        $copy = Join-Path -Path $copyRoot -ChildPath $ModuleName
        New-Item -ItemType Directory -Path $copyRoot -Force | Out-Null
        Copy-Item -LiteralPath $ModuleDir -Destination $copyRoot -Recurse
        $bin = Join-Path -Path $copy -ChildPath 'bin'
        Remove-Item -LiteralPath (Join-Path -Path $bin -ChildPath 'net8.0') -Recurse -Force
        Copy-Item -LiteralPath (Join-Path -Path $bin -ChildPath $Framework) -Destination (Join-Path -Path $bin -ChildPath 'net8.0') -Recurse
        $manifest = Join-Path -Path $copy -ChildPath "$ModuleName.psd1"
        $resultFile = Join-Path -Path $results -ChildPath "pester-$Framework.xml"
    }
    # A child PowerShell: the tests import the BUILT module (BMADGUARD_MODULE_PATH), and its dlls are released
    # when the child exits, so the next build can overwrite them.
    $script = {
        param([string] $PesterPath, [string[]] $Paths, [string] $ResultFile, [string] $Manifest)
        $env:BMADGUARD_MODULE_PATH = $Manifest
        Import-Module -Name $PesterPath -Force
        $config = New-PesterConfiguration
        $config.Run.Path = $Paths
        $config.Run.PassThru = $true
        $config.Output.Verbosity = 'Detailed'
        $config.TestResult.Enabled = $true
        $config.TestResult.OutputFormat = 'NUnitXml'
        $config.TestResult.OutputPath = $ResultFile
        $run = Invoke-Pester -Configuration $config
        exit $run.FailedCount
    }
    # This PowerShell's own executable; `dotnet <PSHOME>/pwsh.dll` when PowerShell runs as a .NET tool.
    $pwsh = @((Get-Process -Id $PID).Path)
    if ([System.IO.Path]::GetFileNameWithoutExtension($pwsh[0]) -eq 'dotnet') {
        $pwsh += Join-Path -Path $PSHOME -ChildPath 'pwsh.dll'
    }
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -Command $script -args $pester.Path, $testFiles, $resultFile, $manifest
    if ($LASTEXITCODE -ne 0) {
        throw "$LASTEXITCODE Pester test(s) failed ($resultFile)"
    }
}

function Invoke-PackageTask {
    Invoke-BuildTask
    if (Get-PlatyPS) {
        Invoke-DocsTask
    }
    # Checks the folder (no test/build files, help present) and packs it as output/packages/BmadGuard.<v>.nupkg.
    Invoke-Dotnet build $ModuleProj '-t:Package' '-p:PackageOnly=true' "-p:Configuration=$Configuration" '-nologo'
    Invoke-Dotnet pack (Join-Path -Path $Root -ChildPath 'src/BmadGuard.Cli') '-c' $Configuration '-o' (Join-Path -Path $OutputRoot -ChildPath 'packages') '-nologo'
    $manifest = Join-Path -Path $ModuleDir -ChildPath "$ModuleName.psd1"
    Test-ModuleManifest -Path $manifest | Format-List -Property 'Name', 'Version', 'Guid', 'CompatiblePSEditions', 'ExportedCmdlets', 'ExportedFunctions'
    Write-Host "Ready to publish: Publish-PSResource -Path '$ModuleDir' -Repository PSGallery -ApiKey <key>"
}

switch ($Task) {
    'Build' { Invoke-BuildTask }
    'Test' { Invoke-TestTask }
    'Pester' { Invoke-BuildTask; Invoke-PesterTests -Required }
    'Docs' { Invoke-DocsTask }
    'Package' { Invoke-PackageTask }
}
