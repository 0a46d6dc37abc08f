using System;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;

namespace BmadGuard.PowerShell.LoadProbe
{
    /// <summary>
    /// Usage: LoadProbe &lt;module bin/net8.0/BmadGuard.dll&gt; &lt;System.Management.Automation.dll&gt; [--no-init]
    /// Prints one line per loaded BmadGuard*/System.Text.Json assembly: name|load context|location, then "data|..."
    /// with the converted event data, or "error|..." if touching Core failed.
    /// Options: --preload &lt;dll&gt; (loaded into the default context first, as PowerShell's own copies are);
    /// --schema &lt;json&gt; &lt;schema&gt; (a JSON Schema check through Core: NJsonSchema and Newtonsoft.Json must load too).
    /// </summary>
    internal static class Program
    {
        private static int Main(string[] args)
        {
            string moduleDll = args[0];
            string smaPath = args[1];
            bool init = !args.Contains("--no-init");

            // PowerShell itself provides System.Management.Automation; here a stand-in satisfies the type loads.
            AssemblyLoadContext.Default.Resolving += (context, name) =>
                name.Name == "System.Management.Automation" ? context.LoadFromAssemblyPath(smaPath) : null;

            // --preload <dll>: an assembly PowerShell itself already loaded (PowerShell 7.4 ships Newtonsoft.Json).
            int preload = Array.IndexOf(args, "--preload");
            if (preload >= 0)
            {
                AssemblyLoadContext.Default.LoadFromAssemblyPath(args[preload + 1]);
            }

            var module = AssemblyLoadContext.Default.LoadFromAssemblyPath(moduleDll);
            if (init)
            {
                var initializer = module.GetType("BmadGuard.Infrastructure.ModuleInitializer", throwOnError: true)!;
                initializer.GetMethod("OnImport")!.Invoke(Activator.CreateInstance(initializer), null);
            }

            try
            {
                var eventType = module.GetType("BmadGuard.BmadEvent", throwOnError: true)!;
                var ctor = eventType.GetConstructors(BindingFlags.NonPublic | BindingFlags.Instance).Single();
                object e = ctor.Invoke(new object?[] { 1L, "id-1", DateTimeOffset.UnixEpoch, "a.b", "probe", null, "{\"k\":[1,2],\"s\":\"x\"}", "{}" });
                var data = (System.Collections.IDictionary)eventType.GetProperty("Data")!.GetValue(e)!;
                Console.WriteLine($"data|{data.Count}|{((object[])data["k"]!).Length}|{data["s"]}");
            }
            catch (TargetInvocationException ex) when (ex.InnerException != null)
            {
                Console.WriteLine($"error|{ex.InnerException.GetType().Name}|{ex.InnerException.Message}");
            }
            catch (Exception ex)
            {
                Console.WriteLine($"error|{ex.GetType().Name}|{ex.Message}");
            }

            // --schema <json file> <schema file>: Test-BmadIntegrity -Schema's Core call (NJsonSchema, Newtonsoft.Json,
            // Namotion.Reflection) made through the module's load path; prints "schema|<healthy>|<codes>".
            int schema = Array.IndexOf(args, "--schema");
            if (schema >= 0)
            {
                try
                {
                    var core = AssemblyLoadContext.Default.LoadFromAssemblyName(new AssemblyName("BmadGuard.Core"));
                    var optionsType = core.GetType("BmadGuard.Core.Legacy.JsonFileVerifyOptions", throwOnError: true)!;
                    object options = Activator.CreateInstance(optionsType)!;
                    optionsType.GetProperty("SchemaPath")!.SetValue(options, args[schema + 2]);
                    var verify = core.GetType("BmadGuard.Core.Legacy.JsonFileVerifier", throwOnError: true)!.GetMethod("Verify")!;
                    object report = verify.Invoke(null, new object?[] { args[schema + 1], options, System.Threading.CancellationToken.None })!;
                    bool healthy = (bool)report.GetType().GetProperty("Healthy")!.GetValue(report)!;
                    var codes = ((System.Collections.IEnumerable)report.GetType().GetProperty("Findings")!.GetValue(report)!)
                        .Cast<object>().Select(f => (string)f.GetType().GetProperty("Code")!.GetValue(f)!);
                    Console.WriteLine($"schema|{healthy}|{string.Join(",", codes)}");
                }
                catch (TargetInvocationException ex) when (ex.InnerException != null)
                {
                    Console.WriteLine($"error|{ex.InnerException.GetType().Name}|{ex.InnerException.Message}");
                }
            }

            foreach (var a in AppDomain.CurrentDomain.GetAssemblies())
            {
                string name = a.GetName().Name ?? "";
                if (name.StartsWith("BmadGuard", StringComparison.Ordinal) || name == "System.Text.Json"
                    || name == "NJsonSchema" || name == "Newtonsoft.Json" || name == "Namotion.Reflection")
                {
                    Console.WriteLine($"{name}|{AssemblyLoadContext.GetLoadContext(a)?.Name}|{a.Location}");
                }
            }

            return 0;
        }
    }
}
