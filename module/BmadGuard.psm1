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
