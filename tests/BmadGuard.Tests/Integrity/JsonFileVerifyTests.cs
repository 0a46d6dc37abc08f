using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using BmadGuard.Core;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    public sealed class JsonFileVerifyTests
    {
        private static string Write(TempDir dir, string name, string text)
        {
            string path = dir.Combine(name);
            File.WriteAllText(path, text);
            return path;
        }

        [Fact]
        public void FixtureIsHealthy()
        {
            var report = JsonFileVerifier.Verify(LegacySalvageTests.FixturePath);
            Assert.True(report.Healthy);
            Assert.Empty(report.Findings);
            Assert.Equal(74, report.RecordsChecked);
            Assert.Equal(new FileInfo(LegacySalvageTests.FixturePath).Length, report.BytesChecked);
        }

        [Theory]
        [InlineData("{\"events\": [\n  {\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"a\", \"data\": {}},\n]}", 3, 1)]
        [InlineData("{\"events\": [] // comment\n}", 1, 15)]
        [InlineData("{\"events\": [],\n  'x': 1}", 2, 3)]
        public void StrictParseReportsLineAndColumnOfFirstError(string text, int line, int column)
        {
            using var dir = new TempDir();
            var report = JsonFileVerifier.Verify(Write(dir, "f.json", text));
            Assert.False(report.Healthy);
            var f = Assert.Single(report.Findings);
            Assert.Equal(FindingCodes.InvalidJson, f.Code);
            Assert.Equal(line, f.Line);
            Assert.Equal(column, f.Column);
        }

        [Fact]
        public void DuplicateKeysAreFlaggedWithTheirPosition()
        {
            using var dir = new TempDir();
            var report = JsonFileVerifier.Verify(Write(dir, "f.json",
                "{\"events\": [\n  {\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"a\", \"event\": \"b\", \"data\": {}}\n]}"));
            Assert.False(report.Healthy);
            var f = Assert.Single(report.Findings, x => x.Code == FindingCodes.DuplicateKey);
            Assert.Equal(2, f.Line);
            Assert.Equal(54, f.Column);
            Assert.Contains("\"event\"", f.Message);
        }

        [Fact]
        public void LegacyShapeGivesAFindingPerBadEvent()
        {
            using var dir = new TempDir();
            var report = JsonFileVerifier.Verify(Write(dir, "f.json",
                "{\"events\": [\n" +
                "  {\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"ok\", \"data\": {}},\n" +
                "  {\"timestamp\": \"yesterday\", \"event\": \"a\", \"data\": {}},\n" +
                "  {\"event\": \"a\", \"data\": {}},\n" +
                "  {\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"s\", \"data\": 5},\n" +
                "  42\n]}"));
            Assert.False(report.Healthy);
            // Only what is not an object is damage; objects the agents wrote without every field are kept and warned about (issue 9).
            var bad = report.Findings.Where(f => f.Code == FindingCodes.LegacyEventInvalid).ToList();
            Assert.Equal(new int?[] { 6 }, bad.Select(f => f.Line).ToArray());
            Assert.Contains("#4", bad[0].Message);
            var incomplete = report.Findings.Where(f => f.Code == "LegacyEventIncomplete").ToList();
            Assert.Equal(new int?[] { 3, 4 }, incomplete.Select(f => f.Line).ToArray());
            Assert.All(incomplete, f => Assert.Equal(FindingSeverity.Warning, f.Severity));
            Assert.Contains("#1", incomplete[0].Message);
            var warn = Assert.Single(report.Findings, f => f.Code == FindingCodes.LegacyDataNotObject);
            Assert.Equal(5, warn.Line);
            Assert.Equal(5, report.RecordsChecked);
        }

        [Fact]
        public void ABomBreaksTheAgentsSoItIsDamageInABusFileAndRepairRemovesIt()
        {
            using var dir = new TempDir();
            string file = dir.Combine("f.json");
            File.WriteAllBytes(file, new byte[] { 0xEF, 0xBB, 0xBF }.Concat(File.ReadAllBytes(LegacySalvageTests.FixturePath)).ToArray());
            var report = JsonFileVerifier.Verify(file);
            Assert.False(report.Healthy);
            Assert.Equal(FindingCodes.Utf8Bom, Assert.Single(report.Findings).Code);
            Assert.True(JsonFileVerifier.Verify(file, new JsonFileVerifyOptions { Check = JsonFileCheck.JsonOnly }).Healthy);
            var repair = LegacyBusFile.Repair(file);
            Assert.Equal(74, repair.RecoveredEvents);
            Assert.True(JsonFileVerifier.Verify(file).Healthy);
            Assert.NotEqual(0xEF, File.ReadAllBytes(file)[0]);
        }

        [Fact]
        public void NotTheLegacyShape()
        {
            using var dir = new TempDir();
            var report = JsonFileVerifier.Verify(Write(dir, "f.json", "[1,2]"));
            Assert.Equal(FindingCodes.LegacyShape, Assert.Single(report.Findings).Code);
            Assert.True(JsonFileVerifier.Verify(dir.Combine("f.json"), new JsonFileVerifyOptions { Check = JsonFileCheck.JsonOnly }).Healthy);
        }

        [Fact]
        public void SchemaViolationsAreReportedWithTheirPlace()
        {
            using var dir = new TempDir();
            string schema = Write(dir, "s.json", "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\",\"maximum\":10}}}");
            Assert.True(JsonFileVerifier.Verify(Write(dir, "good.json", "{\"name\":\"x\",\"n\":3}"), new JsonFileVerifyOptions { SchemaPath = schema }).Healthy);
            var report = JsonFileVerifier.Verify(Write(dir, "bad.json", "{\n  \"n\": 11\n}"), new JsonFileVerifyOptions { SchemaPath = schema });
            Assert.False(report.Healthy);
            Assert.Equal(2, report.Findings.Count(f => f.Code == FindingCodes.SchemaViolation));
            Assert.Contains(report.Findings, f => f.Message.Contains("name"));
            Assert.Contains(report.Findings, f => f.Line == 2 && f.Message.Contains("n"));
        }

        [Fact]
        public void BadInputsAreClearErrors()
        {
            using var dir = new TempDir();
            var missing = Assert.Throws<BmadGuardException>(() => JsonFileVerifier.Verify(dir.Combine("nope.json")));
            Assert.Equal(ErrorCodes.FileNotFound, missing.Code);
            Assert.Equal(FailureKind.InvalidInput, missing.Kind);
            var isDir = Assert.Throws<BmadGuardException>(() => JsonFileVerifier.Verify(dir.Path));
            Assert.Equal(ErrorCodes.InvalidArgument, isDir.Code);
            string f = Write(dir, "f.json", "{}");
            string badSchema = Write(dir, "s.json", "{\"type\": 12, }");
            var schema = Assert.Throws<BmadGuardException>(() => JsonFileVerifier.Verify(f, new JsonFileVerifyOptions { SchemaPath = badSchema }));
            Assert.Equal(ErrorCodes.InvalidSchema, schema.Code);
            var noSchema = Assert.Throws<BmadGuardException>(() => JsonFileVerifier.Verify(f, new JsonFileVerifyOptions { SchemaPath = dir.Combine("gone.json") }));
            Assert.Equal(ErrorCodes.FileNotFound, noSchema.Code);
        }

        [Fact]
        public void CliVerifyContract()
        {
            using var dir = new TempDir();
            string good = dir.Combine("good.json");
            File.Copy(LegacySalvageTests.FixturePath, good);
            string bad = Write(dir, "bad.json", "{\"events\": [ {\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"a\", \"data\": ");
            string badSchema = Write(dir, "s.json", "not json");
            byte[] before = File.ReadAllBytes(bad);

            var ok = CliRunner.Run("verify", "--file", good);
            Assert.Equal(0, ok.ExitCode);
            using (var doc = System.Text.Json.JsonDocument.Parse(ok.StdOut))
            {
                Assert.True(doc.RootElement.GetProperty("healthy").GetBoolean());
                Assert.Equal(74, doc.RootElement.GetProperty("checked").GetProperty("records").GetInt64());
            }

            var damaged = CliRunner.Run("verify", "--file", bad);
            Assert.Equal(1, damaged.ExitCode);
            using (var doc = System.Text.Json.JsonDocument.Parse(damaged.StdOut))
            {
                var finding = doc.RootElement.GetProperty("findings")[0];
                Assert.Equal("InvalidJson", finding.GetProperty("code").GetString());
                Assert.Equal(1, finding.GetProperty("line").GetInt32());
            }

            Assert.Equal("false", CliRunner.Run("verify", "--file", bad, "--quiet").StdOut.Trim());
            Assert.Equal(2, CliRunner.Run("verify").ExitCode);
            Assert.Equal(2, CliRunner.Run("verify", "--file", good, "--store", dir.Path).ExitCode);
            Assert.Equal(2, CliRunner.Run("verify", "--file", dir.Combine("missing.json")).ExitCode);
            Assert.Equal(2, CliRunner.Run("verify", "--file", dir.Path).ExitCode);
            var schemaRun = CliRunner.Run("verify", "--file", good, "--schema", badSchema);
            Assert.Equal(2, schemaRun.ExitCode);
            Assert.Contains("InvalidSchema", schemaRun.StdErr);
            Assert.Equal(2, CliRunner.Run("repair", "--file", dir.Path).ExitCode);
            Assert.Equal(before, File.ReadAllBytes(bad));
            Assert.False(Directory.Exists(dir.Combine(".bmadguard-quarantine")));
        }
    }
}
