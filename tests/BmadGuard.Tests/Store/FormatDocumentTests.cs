using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// docs/store-format.md is a contract: its Python reader (docs/examples/read_store.py, quoted verbatim in
    /// the document) reads stores made by the CLI exactly as `bmadguard get` does, without our code.
    /// </summary>
    public sealed class FormatDocumentTests
    {
        private static string RepoFile(string relative)
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relative);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            throw new FileNotFoundException("not found above the test binaries", relative);
        }

        private static string Reader => RepoFile(Path.Combine("docs", "examples", "read_store.py"));

        private static (int ExitCode, string StdOut, string StdErr) Python(params string[] args)
        {
            var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, StandardOutputEncoding = new UTF8Encoding(false) };
            psi.ArgumentList.Add(Reader);
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output, err.Result);
        }

        [Fact]
        public void The_document_quotes_the_reader_verbatim()
        {
            string doc = File.ReadAllText(RepoFile(Path.Combine("docs", "store-format.md")));
            string script = File.ReadAllText(Reader);
            Assert.Contains("```python\n" + script + "```\n", doc);
        }

        [Fact]
        public void The_python_reader_reads_a_cli_store_exactly_as_bmadguard_get_does()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store, "--segment-max-bytes", "4096", "--max-event-bytes", "2048");
            var input = new StringBuilder();
            string[] texts = { "plain", "é ü ß 日本語 🚀", "quote \\\" backslash \\\\ tab \\t nl \\n", "control \\u0001 \\u001f", "html <b>&amp;</b>", "\\ud83d\\ude80 escaped" };
            for (int i = 0; i < 120; i++)
            {
                string corr = i % 4 == 0 ? "null" : $"\"corr-{i % 7}\"";
                input.Append($"{{\"type\":\"fmt.t{i % 3}\",\"source\":\"agent-{i % 2}\",\"correlationId\":{corr},\"data\":{{\"marker\":\"m{i}\",\"text\":\"{texts[i % texts.Length]}\",\"n\":[{i},{i}.5,-1e10,true,null],\"o\":{{\"k\":{{}}}}}}}}\n");
            }

            Assert.Equal(0, Support.Cli.RunWithStdin(input.ToString(), "publish", "--store", store, "--stdin").ExitCode);
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "fmt.single", "--data", "{\"marker\":\"single\"}").ExitCode);
            Assert.Equal(0, Support.Cli.Run("get", "--store", store, "--consumer", "c").ExitCode);

            var get = Support.Cli.Run("get", "--store", store);
            Assert.Equal(121, get.Lines.Length);
            var py = Python(store);
            Assert.True(py.ExitCode == 0, py.StdErr);
            Assert.Equal(get.StdOut, py.StdOut);

            var check = Python(store, "--check");
            Assert.Equal(0, check.ExitCode);
            using (var summary = JsonDocument.Parse(check.StdOut))
            {
                Assert.Equal(121, summary.RootElement.GetProperty("events").GetInt32());
                Assert.True(summary.RootElement.GetProperty("segments").GetInt32() > 3);
                Assert.Equal(Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Length, summary.RootElement.GetProperty("segments").GetInt32());
                Assert.Equal(0, summary.RootElement.GetProperty("tornTailBytes").GetInt32());
            }

            // A torn tail: the reader stops quietly before it and says how long it is; bmadguard then repairs it.
            string last = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(p => p).Last();
            File.AppendAllText(last, "{\"seq\":122,\"id\":\"half");
            Assert.Equal(get.StdOut, Python(store).StdOut);
            using (var summary = JsonDocument.Parse(Python(store, "--check").StdOut))
            {
                Assert.Equal("{\"seq\":122,\"id\":\"half".Length, summary.RootElement.GetProperty("tornTailBytes").GetInt32());
            }

            Assert.Equal(get.StdOut, Support.Cli.Run("get", "--store", store).StdOut);
            using (var summary = JsonDocument.Parse(Python(store, "--check").StdOut))
            {
                Assert.Equal(0, summary.RootElement.GetProperty("tornTailBytes").GetInt32());
            }

            // Damage in a sealed segment: both readers refuse, naming the same file and byte offset.
            string first = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(p => p).First();
            byte[] bytes = File.ReadAllBytes(first);
            int second = Array.IndexOf(bytes, (byte)'\n', Array.IndexOf(bytes, (byte)'\n') + 1) + 1; // header, record 1, then record 2
            bytes[second + 10] ^= 0x04;
            File.WriteAllBytes(first, bytes);
            var damagedPy = Python(store);
            Assert.Equal(1, damagedPy.ExitCode);
            Assert.StartsWith($"STORE DAMAGED: {first} at byte {second}: ", damagedPy.StdErr);
            var damagedGet = Support.Cli.Run("get", "--store", store);
            Assert.Equal(1, damagedGet.ExitCode);
            Assert.Contains($"'{first}' at byte {second}", damagedGet.StdErr);
            // The same events before the damage; bmadguard get then goes on with the intact events after it (all but seq 2).
            Assert.StartsWith(damagedPy.StdOut, damagedGet.StdOut);
            Assert.Equal(120, damagedGet.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
    }
}
