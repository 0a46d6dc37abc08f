using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// The cmdlet classes as PowerShell will see them. Attributes are read as metadata
    /// (CustomAttributeData) because the System.Management.Automation here is PowerShellStandard's
    /// compile-time copy, whose members do nothing at run time.
    /// </summary>
    public class CmdletSurfaceTests
    {
        private static readonly Assembly Module = typeof(BmadGuard.BmadEvent).Assembly;

        /// <summary>Verbs whose cmdlets only read; every other verb changes state and must support ShouldProcess.</summary>
        private static readonly HashSet<string> ReadOnlyVerbs = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "Get", "Test", "Find", "Search", "Measure", "Watch", "Compare", "Show", "Format", "ConvertTo", "ConvertFrom", "Resolve", "Select", "Read", "Wait",
        };

        public static IEnumerable<object[]> CmdletTypes()
            => Module.GetTypes().Where(t => typeof(Cmdlet).IsAssignableFrom(t) && !t.IsAbstract).Select(t => new object[] { t });

        private static CustomAttributeData? Attr<T>(MemberInfo m) => m.GetCustomAttributesData().FirstOrDefault(a => a.AttributeType == typeof(T));

        private static object? Named(CustomAttributeData a, string name)
            => a.NamedArguments.Where(n => n.MemberName == name).Select(n => n.TypedValue.Value).FirstOrDefault();

        [Fact]
        public void The_module_has_the_store_backup_monitor_and_health_cmdlets()
        {
            var names = CmdletTypes().Select(o => (Type)o[0])
                .Select(t => Attr<CmdletAttribute>(t)!)
                .Select(a => $"{a.ConstructorArguments[0].Value}-{a.ConstructorArguments[1].Value}")
                .OrderBy(n => n, StringComparer.Ordinal)
                .ToArray();
            Assert.Equal(new[]
            {
                "Backup-BmadStore", "Export-BmadEvent", "Get-BmadBackup", "Get-BmadEvent", "Get-BmadHealth", "Get-BmadMonitor", "Get-BmadMonitorTaskDefinition", "Get-BmadStoreStatistics", "Import-BmadLegacyBus", "New-BmadStore", "Publish-BmadEvent", "Repair-BmadStore", "Restore-BmadStore", "Send-BmadAlert", "Start-BmadMonitor", "Test-BmadIntegrity",
            }, names);
        }

        [Fact]
        public void Restore_is_high_impact_and_binds_a_backup_from_the_pipeline_by_name_and_store()
        {
            var t = typeof(BmadGuard.Commands.RestoreBmadStoreCommand);
            var cmdlet = Attr<CmdletAttribute>(t)!;
            Assert.Equal(ConfirmImpact.High, (ConfirmImpact)Named(cmdlet, "ConfirmImpact")!);
            Assert.Equal("Latest", Named(cmdlet, "DefaultParameterSetName"));

            var name = Attr<ParameterAttribute>(t.GetProperty("Name")!)!;
            Assert.Equal("Name", Named(name, "ParameterSetName"));
            Assert.True(Named(name, "ValueFromPipeline") is true);
            Assert.True(Named(name, "ValueFromPipelineByPropertyName") is true);
            var store = Attr<ParameterAttribute>(t.GetProperty("Store")!)!;
            Assert.True(Named(store, "ValueFromPipelineByPropertyName") is true);
            Assert.Equal(typeof(DateTime), t.GetProperty("At")!.PropertyType);
            Assert.Equal(typeof(long), t.GetProperty("Sequence")!.PropertyType);
            Assert.Equal(typeof(SwitchParameter), t.GetProperty("Force")!.PropertyType);

            // What Get-BmadBackup writes has the two properties the restore binds.
            Assert.Equal(typeof(string), typeof(BmadGuard.BmadBackup).GetProperty("Name")!.PropertyType);
            Assert.Equal(typeof(string), typeof(BmadGuard.BmadBackup).GetProperty("Store")!.PropertyType);
        }

        [Fact]
        public void Backup_takes_the_four_retention_rules_and_Get_BmadBackup_names_take_wildcards()
        {
            var backup = typeof(BmadGuard.Commands.BackupBmadStoreCommand);
            foreach (string keep in new[] { "KeepLast", "KeepHourly", "KeepDaily", "KeepWeekly" })
            {
                Assert.NotNull(Attr<ParameterAttribute>(backup.GetProperty(keep)!));
            }

            Assert.NotNull(Attr<SupportsWildcardsAttribute>(typeof(BmadGuard.Commands.GetBmadBackupCommand).GetProperty("Name")!));
        }

        [Theory]
        [MemberData(nameof(CmdletTypes))]
        public void Every_cmdlet_is_sealed_named_for_its_verb_and_noun_and_declares_its_output(Type type)
        {
            Assert.True(type.IsSealed && type.IsPublic, $"{type.Name} must be public sealed");
            var cmdlet = Attr<CmdletAttribute>(type);
            Assert.NotNull(cmdlet);
            string verb = (string)cmdlet!.ConstructorArguments[0].Value!;
            string noun = (string)cmdlet.ConstructorArguments[1].Value!;
            Assert.Equal(verb + noun + "Command", type.Name);
            Assert.StartsWith("Bmad", noun);

            var output = Attr<OutputTypeAttribute>(type);
            Assert.NotNull(output);
            var outputTypes = ((IEnumerable<CustomAttributeTypedArgument>)output!.ConstructorArguments[0].Value!).Select(a => (Type)a.Value!).ToArray();
            Assert.NotEmpty(outputTypes);
            Assert.All(outputTypes, t => Assert.Equal(Module, t.Assembly));
        }

        [Theory]
        [MemberData(nameof(CmdletTypes))]
        public void Every_cmdlet_that_changes_state_supports_ShouldProcess(Type type)
        {
            var cmdlet = Attr<CmdletAttribute>(type)!;
            string verb = (string)cmdlet.ConstructorArguments[0].Value!;
            bool supports = Named(cmdlet, nameof(CmdletAttribute.SupportsShouldProcess)) is true;
            if (ReadOnlyVerbs.Contains(verb))
            {
                Assert.False(supports, $"{type.Name} only reads; -WhatIf would promise something it does not do");
            }
            else
            {
                Assert.True(supports, $"{type.Name} changes state and must support -WhatIf/-Confirm");
            }
        }

        [Fact]
        public void Publish_and_New_support_ShouldProcess_and_the_readers_do_not()
        {
            Assert.True(Named(Attr<CmdletAttribute>(typeof(BmadGuard.Commands.PublishBmadEventCommand))!, "SupportsShouldProcess") is true);
            Assert.True(Named(Attr<CmdletAttribute>(typeof(BmadGuard.Commands.NewBmadStoreCommand))!, "SupportsShouldProcess") is true);
            Assert.False(Named(Attr<CmdletAttribute>(typeof(BmadGuard.Commands.GetBmadEventCommand))!, "SupportsShouldProcess") is true);
        }

        [Fact]
        public void Output_types_are_sealed_with_get_only_properties()
        {
            var declared = CmdletTypes()
                .SelectMany(o => ((Type)o[0]).GetCustomAttributesData().Where(a => a.AttributeType == typeof(OutputTypeAttribute)))
                .SelectMany(a => (IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!)
                .Select(a => (Type)a.Value!);
            var nested = new[] { typeof(BmadGuard.BmadIntegrityFinding), typeof(BmadGuard.BmadRepairAction), typeof(BmadGuard.BmadLegacySkippedEvent), typeof(BmadGuard.BmadEvent), typeof(BmadGuard.BmadStoreStatistics), typeof(BmadGuard.BmadStoreInfo), typeof(BmadGuard.BmadBackup), typeof(BmadGuard.BmadRestoreResult), typeof(BmadGuard.BmadMonitorEvent), typeof(BmadGuard.BmadMonitorStatus), typeof(BmadGuard.BmadAlertDelivery), typeof(BmadGuard.BmadHealthReport), typeof(BmadGuard.BmadHealthCheck), typeof(BmadGuard.BmadMonitorTaskDefinition) };
            foreach (var t in declared.Concat(nested).Distinct())
            {
                Assert.True(t.IsSealed, t.Name);
                Assert.Equal("BmadGuard", t.Namespace);
                Assert.Empty(t.GetConstructors()); // only the module creates them
                Assert.All(t.GetProperties(), p => Assert.True(p.SetMethod == null || !p.SetMethod.IsPublic, $"{t.Name}.{p.Name} must be get-only"));
            }
        }

        [Fact]
        public void No_public_signature_exposes_a_dependency_type()
        {
            // BmadGuard.Core and System.Text.Json live in an isolated load context; a type of theirs in a public
            // signature would have to cross it (and would tie users to our copy of System.Text.Json).
            static bool Foreign(Type t)
            {
                if (t.HasElementType)
                {
                    return Foreign(t.GetElementType()!);
                }

                if (t.IsGenericType && t.GetGenericArguments().Any(Foreign))
                {
                    return true;
                }

                string asm = t.Assembly.GetName().Name!;
                return asm == "BmadGuard.Core" || asm.StartsWith("System.Text.Json", StringComparison.Ordinal) || asm == "System.Text.Encodings.Web";
            }

            var offenders = new List<string>();
            foreach (var type in Module.GetExportedTypes())
            {
                const BindingFlags Visible = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
                foreach (var p in type.GetProperties(Visible).Where(p => Foreign(p.PropertyType)))
                {
                    offenders.Add($"{type.Name}.{p.Name}");
                }

                foreach (var m in type.GetMethods(Visible).Where(m => !m.IsSpecialName && (Foreign(m.ReturnType) || m.GetParameters().Any(x => Foreign(x.ParameterType)))))
                {
                    offenders.Add($"{type.Name}.{m.Name}()");
                }

                foreach (var c in type.GetConstructors().Where(c => c.GetParameters().Any(x => Foreign(x.ParameterType))))
                {
                    offenders.Add($"{type.Name}..ctor");
                }

                if (type.BaseType != null && Foreign(type.BaseType))
                {
                    offenders.Add($"{type.Name} : {type.BaseType.Name}");
                }
            }

            Assert.Empty(offenders);
        }

        [Fact]
        public void The_cmdlet_assembly_never_references_System_Text_Json_itself()
        {
            // Only Core may bind System.Text.Json, inside the isolated context; a direct reference from BmadGuard.dll
            // would bind in PowerShell's default context and meet PowerShell's own (older) copy.
            var refs = Module.GetReferencedAssemblies().Select(a => a.Name).ToArray();
            Assert.Contains("BmadGuard.Core", refs);
            Assert.DoesNotContain("System.Text.Json", refs);
        }

        [Fact]
        public void The_module_initializer_is_public_so_PowerShell_finds_it()
        {
            var init = typeof(BmadGuard.Infrastructure.ModuleInitializer);
            Assert.True(init.IsPublic && init.IsSealed);
            Assert.True(typeof(IModuleAssemblyInitializer).IsAssignableFrom(init));
            Assert.True(typeof(IModuleAssemblyCleanup).IsAssignableFrom(init));
        }

        [Theory]
        [InlineData(typeof(BmadGuard.Commands.PublishBmadEventCommand), "Type", typeof(BmadGuard.Completion.EventTypeCompleter))]
        [InlineData(typeof(BmadGuard.Commands.PublishBmadEventCommand), "Source", typeof(BmadGuard.Completion.EventSourceCompleter))]
        [InlineData(typeof(BmadGuard.Commands.GetBmadEventCommand), "Type", typeof(BmadGuard.Completion.EventTypeCompleter))]
        [InlineData(typeof(BmadGuard.Commands.GetBmadEventCommand), "Source", typeof(BmadGuard.Completion.EventSourceCompleter))]
        [InlineData(typeof(BmadGuard.Commands.GetBmadBackupCommand), "Name", typeof(BmadGuard.Completion.BackupNameCompleter))]
        [InlineData(typeof(BmadGuard.Commands.RestoreBmadStoreCommand), "Name", typeof(BmadGuard.Completion.BackupNameCompleter))]
        public void Types_sources_and_backup_names_have_completers(Type cmdlet, string parameter, Type completer)
        {
            var a = Attr<ArgumentCompleterAttribute>(cmdlet.GetProperty(parameter)!);
            Assert.NotNull(a);
            Assert.Equal(completer, a!.ConstructorArguments[0].Value);
        }

        [Fact]
        public void Publish_takes_pipeline_input_by_value_and_by_property_name()
        {
            var t = typeof(BmadGuard.Commands.PublishBmadEventCommand);
            var byValue = Attr<ParameterAttribute>(t.GetProperty("InputObject")!)!;
            Assert.True(Named(byValue, "ValueFromPipeline") is true);
            foreach (string name in new[] { "Type", "Data", "Source", "CorrelationId" })
            {
                Assert.True(Named(Attr<ParameterAttribute>(t.GetProperty(name)!)!, "ValueFromPipelineByPropertyName") is true, name);
                // The output object binds back by the same names (copying events between stores).
                Assert.NotNull(typeof(BmadGuard.BmadEvent).GetProperty(name));
            }
        }

        [Fact]
        public void Get_BmadEvent_Type_and_Source_accept_wildcards()
        {
            var t = typeof(BmadGuard.Commands.GetBmadEventCommand);
            Assert.NotNull(Attr<SupportsWildcardsAttribute>(t.GetProperty("Type")!));
            Assert.NotNull(Attr<SupportsWildcardsAttribute>(t.GetProperty("Source")!));
        }
    }
}
