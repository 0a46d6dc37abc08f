using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;
#if NET8_0_OR_GREATER
using System.Runtime.Loader;
#endif

namespace BmadGuard.Infrastructure
{
    /// <summary>
    /// Keeps BmadGuard's dependencies (BmadGuard.Core, System.Text.Json and what it needs) out of PowerShell's
    /// way, the way PSResourceGet does: PowerShell 7.4 already has .NET 8's System.Text.Json loaded and
    /// Windows PowerShell 5.1 has none, and another module may bring a third version.
    /// </summary>
    /// <remarks>
    /// The module folder this expects (assembled by build.ps1 / the module-infra target):
    /// <code>
    /// output/BmadGuard/
    ///   BmadGuard.psd1                 manifest (RootModule BmadGuard.psm1)
    ///   BmadGuard.psm1                 imports bin/&lt;tfm&gt;/BmadGuard.dll for the running edition
    ///   BmadGuard.format.ps1xml        table views of the output types
    ///   en-US/BmadGuard.dll-Help.xml   cmdlet help (MAML), en-US/about_BmadGuard.help.txt
    ///   bin/net8.0/BmadGuard.dll                 PowerShell 7.4+ (Core edition): cmdlets only
    ///   bin/net8.0/dependencies/BmadGuard.Core.dll, System.Text.Json.dll, System.Text.Encodings.Web.dll,
    ///                          System.IO.Pipelines.dll, ... (every other dll of the net8.0 build output)
    ///   bin/netstandard2.0/BmadGuard.dll         Windows PowerShell 5.1 (Desktop edition)
    ///   bin/netstandard2.0/dependencies/BmadGuard.Core.dll, System.Text.Json.dll, System.Memory.dll,
    ///                          System.Buffers.dll, System.Runtime.CompilerServices.Unsafe.dll, ...
    /// </code>
    /// System.Management.Automation.dll is never shipped (PowerShellStandard.Library is compile-time only).
    /// BmadGuard.dll itself references only BmadGuard.Core (never System.Text.Json), and no Core or
    /// System.Text.Json type appears in a cmdlet parameter or output type, so the cmdlets' metadata loads
    /// without any dependency; the first call into Core resolves through the handlers below.
    /// <para>
    /// PowerShell 7.4+ (net8.0): the default load context fails to find BmadGuard.Core (it is not beside
    /// BmadGuard.dll), raises Resolving, and we load it into <c>DependencyLoadContext</c>; Core's own
    /// references (System.Text.Json 10, ...) then bind inside that context from the dependencies folder,
    /// never to the copies in the default context.
    /// </para>
    /// <para>
    /// Windows PowerShell 5.1 (netstandard2.0): there is one AppDomain, so isolation is by resolution only:
    /// AssemblyResolve loads any assembly whose file is in the dependencies folder, whatever version was
    /// asked for (binding redirects between System.Memory, System.Buffers, ... are not available to a module).
    /// </para>
    /// </remarks>
    public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
    {
        internal const string DependencyFolderName = "dependencies";

        private static readonly string DependencyDirectory = Path.Combine(
            Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location) ?? ".", DependencyFolderName);

        /// <summary>Called by PowerShell when the module is imported.</summary>
        public void OnImport()
        {
#if NET8_0_OR_GREATER
            AssemblyLoadContext.Default.Resolving += ResolveIntoDependencyContext;
#else
            AppDomain.CurrentDomain.AssemblyResolve += ResolveFromDependencyFolder;
#endif
        }

        /// <summary>Called by PowerShell when the module is removed.</summary>
        public void OnRemove(PSModuleInfo psModuleInfo)
        {
#if NET8_0_OR_GREATER
            AssemblyLoadContext.Default.Resolving -= ResolveIntoDependencyContext;
#else
            AppDomain.CurrentDomain.AssemblyResolve -= ResolveFromDependencyFolder;
#endif
        }

        /// <summary>The path of a dependency by simple name, or null when the folder has no such file.</summary>
        internal static string? DependencyPath(string? simpleName)
        {
            if (string.IsNullOrEmpty(simpleName))
            {
                return null;
            }

            string path = Path.Combine(DependencyDirectory, simpleName + ".dll");
            return File.Exists(path) ? path : null;
        }

#if NET8_0_OR_GREATER
        private static Assembly? ResolveIntoDependencyContext(AssemblyLoadContext context, AssemblyName name)
        {
            // Only the engine (BmadGuard.Core, and any later BmadGuard.* engine assembly) is redirected:
            // everything it needs follows it into the isolated context.
            if (name.Name == null || !name.Name.StartsWith("BmadGuard.", StringComparison.Ordinal) || DependencyPath(name.Name) == null)
            {
                return null;
            }

            return DependencyLoadContext.Instance.LoadFromAssemblyName(name);
        }

        /// <summary>The isolated context for BmadGuard.Core and its dependencies.</summary>
        internal sealed class DependencyLoadContext : AssemblyLoadContext
        {
            public static readonly DependencyLoadContext Instance = new DependencyLoadContext();

            private DependencyLoadContext()
                : base("BmadGuard.Dependencies", isCollectible: false)
            {
            }

            protected override Assembly? Load(AssemblyName assemblyName)
            {
                // A file in our folder wins; anything else (the framework, System.Management.Automation)
                // comes from the default context, so types shared with PowerShell stay one type.
                string? path = DependencyPath(assemblyName.Name);
                return path == null ? null : LoadFromAssemblyPath(path);
            }
        }
#else
        private static Assembly? ResolveFromDependencyFolder(object? sender, ResolveEventArgs args)
        {
            string? simpleName = new AssemblyName(args.Name).Name;
            string? path = DependencyPath(simpleName);
            return path == null ? null : Assembly.LoadFrom(path);
        }
#endif
    }
}
