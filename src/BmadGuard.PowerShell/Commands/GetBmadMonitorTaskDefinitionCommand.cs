using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Runtime.InteropServices;
using BmadGuard.Core;
using BmadGuard.Core.Scheduling;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Get-BmadMonitorTaskDefinition: renders the systemd unit, launchd plist or Task Scheduler XML that runs
    /// <c>bmadguard monitor --store STORE</c> (MonitorTaskTemplates.Render). Register-BmadMonitorTask installs it;
    /// on its own it shows exactly what would be installed.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BmadMonitorTaskDefinition", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Get-BmadMonitorTaskDefinition.md")]
    [OutputType(typeof(BmadMonitorTaskDefinition))]
    public sealed class GetBmadMonitorTaskDefinitionCommand : PSCmdlet
    {
        internal const string ErrorPrefix = "GetBmadMonitorTaskDefinition";

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Systemd, Launchd or TaskScheduler (default: the one of this operating system).</summary>
        [Parameter]
        [ValidateSet("Systemd", "Launchd", "TaskScheduler", IgnoreCase = true)]
        public string? Platform { get; set; }

        /// <summary>User (the user's own service manager; default) or System (a system service, run as -User).</summary>
        [Parameter]
        [ValidateSet("User", "System", IgnoreCase = true)]
        public string Scope { get; set; } = "User";

        /// <summary>The account the service runs as (System scope).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? User { get; set; }

        /// <summary>
        /// The bmadguard CLI executable to run instead of PowerShell. Default: none; the service runs this PowerShell
        /// with this module (Start-BmadMonitor), so the CLI need not be installed.
        /// </summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Executable { get; set; }

        /// <summary>A monitor configuration file for the service to use (default: the store's bmadguard.monitor.json).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        protected override void ProcessRecord()
        {
            string store = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            try
            {
                string[]? hostArguments = null;
                var options = new MonitorTaskOptions
                {
                    Store = store,
                    Executable = Executable != null ? SessionState.Path.GetUnresolvedProviderPathFromPSPath(Executable) : PowerShellHost(out hostArguments),
                    HostArguments = hostArguments,
                    PowerShellModule = Executable != null ? null : ModuleManifestPath(),
                    ConfigPath = ConfigPath == null ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(ConfigPath),
                    User = User,
                    SystemScope = string.Equals(Scope, "System", StringComparison.OrdinalIgnoreCase),
                };
                var platform = Platform != null ? (MonitorTaskPlatform)Enum.Parse(typeof(MonitorTaskPlatform), Platform, true) : DefaultPlatform();
                WriteObject(new BmadMonitorTaskDefinition(MonitorTaskTemplates.Render(platform, options), store, User, options.SystemScope));
            }
            catch (Core.BmadGuardException ex)
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, store));
            }
        }

        internal static MonitorTaskPlatform DefaultPlatform()
            => RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? MonitorTaskPlatform.TaskScheduler
                : RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? MonitorTaskPlatform.Launchd
                : MonitorTaskPlatform.Systemd;

        /// <summary>
        /// This PowerShell's executable, as a full path (a service manager does not search PATH); when PowerShell runs
        /// as a .NET tool its process is dotnet, and pwsh.dll (in $PSHOME) is its first argument.
        /// </summary>
        private string PowerShellHost(out string[]? hostArguments)
        {
            hostArguments = null;
            string exe;
            using (var self = System.Diagnostics.Process.GetCurrentProcess())
            {
                exe = self.MainModule?.FileName ?? string.Empty;
            }

            if (string.Equals(System.IO.Path.GetFileNameWithoutExtension(exe), "dotnet", StringComparison.OrdinalIgnoreCase))
            {
                string psHome = (string)SessionState.PSVariable.GetValue("PSHOME", string.Empty);
                hostArguments = new[] { System.IO.Path.Combine(psHome, "pwsh.dll") };
            }

            return exe;
        }

        /// <summary>The module's manifest (BmadGuard.psd1, two folders above bin/&lt;tfm&gt;/BmadGuard.dll), else the dll itself.</summary>
        private static string ModuleManifestPath()
        {
            string dll = typeof(GetBmadMonitorTaskDefinitionCommand).Assembly.Location;
            string? dir = System.IO.Path.GetDirectoryName(dll);
            for (int i = 0; i < 3 && dir != null; i++, dir = System.IO.Path.GetDirectoryName(dir))
            {
                string manifest = System.IO.Path.Combine(dir, "BmadGuard.psd1");
                if (File.Exists(manifest))
                {
                    return manifest;
                }
            }

            return dll;
        }
    }
}
