using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Text;
using BmadGuard.Commands;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// Test-BmadIntegrity, Repair-BmadStore, Import-BmadLegacyBus, Export-BmadEvent and Publish-BmadEvent -Path as
    /// PowerShell binds them (metadata), and the output objects built from real Core results.
    /// </summary>
    public sealed class IntegrityCmdletTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "bg-ps-int-" + Guid.NewGuid().ToString("N"));

        public IntegrityCmdletTests() => Directory.CreateDirectory(_dir);

        public void Dispose()
        {
            try
            {
                Directory.Delete(_dir, true);
            }
            catch (IOException)
            {
            }
        }

        private static List<CustomAttributeData> Params(Type t, string property)
            => t.GetProperty(property)!.GetCustomAttributesData().Where(a => a.AttributeType == typeof(ParameterAttribute)).ToList();

        private static object? Named(CustomAttributeData a, string name)
            => a.NamedArguments.Where(n => n.MemberName == name).Select(n => n.TypedValue.Value).FirstOrDefault();

        private static string[] Aliases(Type t, string property)
            => t.GetProperty(property)!.GetCustomAttributesData().Where(a => a.AttributeType == typeof(AliasAttribute))
                .SelectMany(a => (IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!).Select(a => (string)a.Value!).ToArray();

        private static CustomAttributeData Cmdlet(Type t) => t.GetCustomAttributesData().First(a => a.AttributeType == typeof(CmdletAttribute));

        private const string Fixture = "{\n  \"events\": [\n    {\"timestamp\": \"2026-11-01T10:00:00.000001\", \"event\": \"story.created\", \"data\": {\"story\": \"S-1\"}},\n    {\"timestamp\": \"2026-11-01T10:00:01.000002\", \"event\": \"story.done\", \"data\": {\"story\": \"S-1\"}}\n  ]\n}\n";

        [Theory]
        [InlineData(typeof(TestBmadIntegrityCommand))]
        [InlineData(typeof(RepairBmadStoreCommand))]
        public void Store_paths_bind_by_value_and_files_by_FullName_so_Get_ChildItem_pipes_in(Type t)
        {
            var store = Assert.Single(Params(t, "Store"));
            Assert.True(Named(store, "ValueFromPipeline") is true);
            Assert.True(Named(store, "ValueFromPipelineByPropertyName") is true);
            var path = Assert.Single(Params(t, "Path"));
            Assert.True(Named(path, "ValueFromPipelineByPropertyName") is true);
            Assert.True(Named(path, "Mandatory") is true);
            Assert.Contains("FullName", Aliases(t, "Path"));
            Assert.Equal("Store", Named(Cmdlet(t), "DefaultParameterSetName"));
        }

        [Fact]
        public void Repair_binds_the_Target_of_an_integrity_report_and_asks_at_High_impact_with_a_Force_switch()
        {
            var t = typeof(RepairBmadStoreCommand);
            Assert.Contains("Target", Aliases(t, "Store"));
            Assert.NotNull(typeof(BmadIntegrityReport).GetProperty("Target"));
            Assert.True(Named(Cmdlet(t), "SupportsShouldProcess") is true);
            Assert.Equal((int)ConfirmImpact.High, Named(Cmdlet(t), "ConfirmImpact"));
            Assert.Equal(typeof(SwitchParameter), t.GetProperty("Force")!.PropertyType);
        }

        [Fact]
        public void Test_is_read_only_and_Quiet_is_a_switch()
        {
            var t = typeof(TestBmadIntegrityCommand);
            Assert.False(Named(Cmdlet(t), "SupportsShouldProcess") is true);
            Assert.Equal(typeof(SwitchParameter), t.GetProperty("Quiet")!.PropertyType);
            Assert.Equal("Path", Named(Assert.Single(Params(t, "Schema")), "ParameterSetName"));
        }

        [Fact]
        public void Export_takes_the_events_Get_BmadEvent_writes_by_value_and_completes_Type()
        {
            var t = typeof(ExportBmadEventCommand);
            var input = Assert.Single(Params(t, "InputObject"));
            Assert.True(Named(input, "ValueFromPipeline") is true);
            Assert.Equal(typeof(BmadEvent[]), t.GetProperty("InputObject")!.PropertyType);
            var getOutput = typeof(GetBmadEventCommand).GetCustomAttributesData().First(a => a.AttributeType == typeof(OutputTypeAttribute));
            Assert.Contains(((IEnumerable<CustomAttributeTypedArgument>)getOutput.ConstructorArguments[0].Value!).Select(a => (Type)a.Value!), x => x == typeof(BmadEvent));
            Assert.NotNull(t.GetProperty("Type")!.GetCustomAttributesData().FirstOrDefault(a => a.AttributeType == typeof(ArgumentCompleterAttribute)));
            Assert.NotNull(t.GetProperty("Type")!.GetCustomAttributesData().FirstOrDefault(a => a.AttributeType == typeof(SupportsWildcardsAttribute)));
            Assert.True(Named(Cmdlet(t), "SupportsShouldProcess") is true);
        }

        [Fact]
        public void Publish_has_a_Legacy_set_with_mandatory_Path_and_keeps_its_store_sets()
        {
            var t = typeof(PublishBmadEventCommand);
            var path = Assert.Single(Params(t, "Path"));
            Assert.Equal("Legacy", Named(path, "ParameterSetName"));
            Assert.True(Named(path, "Mandatory") is true);
            Assert.Equal(new[] { "Fields", "Legacy" }, Params(t, "Type").Select(a => (string)Named(a, "ParameterSetName")!).OrderBy(n => n));
            Assert.Equal(new[] { "Fields", "InputObject" }, Params(t, "Store").Select(a => (string)Named(a, "ParameterSetName")!).OrderBy(n => n));
            Assert.Equal("Legacy", Named(Assert.Single(Params(t, "KeepGenerations")), "ParameterSetName"));
            // InputObject, not Fields: with Fields as the default, PowerShell commits to it for piped input and a piped
            // hashtable binds to nothing (found by the Pester suite in PowerShell 7.6).
            Assert.Equal("InputObject", Named(Cmdlet(t), "DefaultParameterSetName"));
            var outputs = t.GetCustomAttributesData().Where(a => a.AttributeType == typeof(OutputTypeAttribute))
                .SelectMany(a => (IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!).Select(a => (Type)a.Value!).ToArray();
            Assert.Contains(typeof(BmadEvent), outputs);
            Assert.Contains(typeof(BmadLegacyPublishResult), outputs);
        }

        [Fact]
        public void A_damaged_legacy_file_report_names_the_file_line_and_column()
        {
            string file = Path.Combine(_dir, "shared_context.json");
            string cut = Fixture.Substring(0, Fixture.IndexOf("\"data\": {\"story\": \"S-1\"}}\n  ]", Fixture.IndexOf("story.done"), StringComparison.Ordinal) + 8);
            File.WriteAllText(file, cut);
            var report = BmadIntegrityReport.FromReport(JsonFileVerifier.Verify(file));
            Assert.False(report.Healthy);
            Assert.Equal("file", report.Kind);
            Assert.Equal(1, report.FilesChecked);
            Assert.Equal(cut.Length, report.BytesChecked);
            var error = Assert.Single(report.Findings, f => f.Severity == "Error");
            Assert.Equal("InvalidJson", error.Code);
            Assert.Equal(file, error.File);
            Assert.Equal(4, error.Line);
            Assert.NotNull(error.Column);
            Assert.Equal(report.Findings.Count(f => f.Severity == "Error"), report.ErrorCount);
        }

        [Fact]
        public void A_healthy_legacy_file_gives_a_healthy_report_and_a_bad_schema_the_InvalidSchema_code()
        {
            string file = Path.Combine(_dir, "shared_context.json");
            File.WriteAllText(file, Fixture);
            Assert.True(BmadIntegrityReport.FromReport(JsonFileVerifier.Verify(file)).Healthy);
            string schema = Path.Combine(_dir, "bad.schema.json");
            File.WriteAllText(schema, "{ not json");
            var ex = Assert.Throws<Core.BmadGuardException>(() => JsonFileVerifier.Verify(file, new JsonFileVerifyOptions { Check = JsonFileCheck.Schema, SchemaPath = schema }));
            Assert.Equal("TestBmadIntegrityInvalidSchema", Id(ex));
            var missing = Assert.Throws<Core.BmadGuardException>(() => JsonFileVerifier.Verify(Path.Combine(_dir, "nope.json")));
            Assert.Equal("TestBmadIntegrityFileNotFound", Id(missing));
        }

        // ErrorRecord is PowerShellStandard's inert copy here, so the id is checked through the same helpers ToErrorRecord uses.
        private static string Id(Exception ex)
            => BmadGuard.Infrastructure.BmadCmdletSupport.ErrorId(TestBmadIntegrityCommand.ErrorPrefix, BmadGuard.Infrastructure.BmadCmdletSupport.Describe(ex).Condition);

        [Fact]
        public void A_legacy_repair_report_lists_the_quarantined_bytes_and_the_damage()
        {
            string file = Path.Combine(_dir, "shared_context.json");
            string cut = Fixture.Substring(0, Fixture.IndexOf("\"data\"", Fixture.IndexOf("story.done"), StringComparison.Ordinal) + 8);
            File.WriteAllText(file, cut);
            var report = BmadRepairReport.FromLegacyResult(LegacyBusFile.Repair(file));
            Assert.False(report.WasHealthy);
            Assert.True(report.Healthy);
            Assert.Equal(1, report.RecoveredEvents);
            Assert.Equal(cut.Length, report.BytesMoved);
            Assert.NotNull(report.QuarantinePath);
            Assert.Equal(cut, File.ReadAllText(report.QuarantinePath!));
            var quarantined = Assert.Single(report.Actions, a => a.Kind == "Quarantined");
            Assert.Equal(0, quarantined.Offset);
            Assert.Equal(cut.Length, quarantined.Length);
            var damaged = Assert.Single(report.Actions, a => a.Kind == "DamagedRegion");
            Assert.Equal(report.DamageOffset, damaged.Offset);
            Assert.True(JsonFileVerifier.Verify(file).Healthy);

            var again = BmadRepairReport.FromLegacyResult(LegacyBusFile.Repair(file));
            Assert.True(again.WasHealthy);
            Assert.Empty(again.Actions);
            Assert.Equal(0, again.BytesMoved);
        }

        [Fact]
        public void Piped_events_export_in_the_order_given_from_the_records_they_carry()
        {
            string store = Path.Combine(_dir, "store");
            using var s = FileEventStore.Initialize(store, null, null, out _);
            var acked = new List<EventRecord>();
            s.Publish(new[]
            {
                EventDraft.FromJson("story.created", "dev", null, "{\"n\":1}"),
                EventDraft.FromJson("task.created", "dev", null, "{\"n\":2}"),
                EventDraft.FromJson("story.done", "dev", null, "{\"n\":3}"),
            }, acked.Add);
            var piped = s.Read(new EventQuery { Type = "story.*" }).Select(BmadEvent.FromRecord).Reverse().ToArray();
            Assert.All(piped, e => Assert.NotNull(e.Record));

            string outFile = Path.Combine(_dir, "out.ndjson");
            long n = LegacyTransfer.ExportToFile(piped.Select(e => e.Record!), outFile, ExportFormat.Ndjson);
            Assert.Equal(2, n);
            var lines = File.ReadAllLines(outFile);
            Assert.Equal(new[] { piped[0].Json, piped[1].Json }, lines);
            Assert.Contains("story.done", lines[0]);

            string legacy = Path.Combine(_dir, "out.json");
            LegacyTransfer.ExportToFile(piped.Select(e => e.Record!), legacy, ExportFormat.Legacy);
            var report = JsonFileVerifier.Verify(legacy);
            Assert.True(report.Healthy);
            Assert.Equal(2, LegacyScanner.Scan(File.ReadAllBytes(legacy)).Events.Count);
            Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
        }

        [Fact]
        public void Legacy_publish_data_is_validated_like_a_store_publish_and_given_back_compact()
        {
            var draft = BmadGuard.Infrastructure.BmadCmdletSupport.ToDraft("story.created", new System.Collections.Hashtable { ["story"] = "S-9" }, null, null);
            Assert.Equal("{\"story\":\"S-9\"}", EventSerializer.DataJson(draft));
            var bad = Assert.Throws<Core.BmadGuardException>(() => EventSerializer.DataJson(EventDraft.FromJson("story.created", null, null, "[1,2]")));
            Assert.Equal(ErrorCodes.DataNotObject, bad.Code);
            Assert.Throws<Core.BmadGuardException>(() => EventSerializer.DataJson(EventDraft.FromJson("bad type", null, null, "{}")));
        }

        [Fact]
        public void Outputs_never_expose_a_Core_type()
        {
            foreach (var t in new[] { typeof(BmadIntegrityReport), typeof(BmadIntegrityFinding), typeof(BmadRepairReport), typeof(BmadRepairAction),
                         typeof(BmadLegacyImportResult), typeof(BmadLegacySkippedEvent), typeof(BmadLegacyPublishResult), typeof(BmadExportResult) })
            {
                Assert.All(t.GetProperties(), p => Assert.NotEqual("BmadGuard.Core", (p.PropertyType.GetElementType() ?? p.PropertyType).Assembly.GetName().Name));
            }
        }
    }
}
