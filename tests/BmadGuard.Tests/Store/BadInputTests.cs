using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>A store with a few events in it, shared by the bad-input cases (each proves it unchanged).</summary>
    public sealed class BadInputStore : IDisposable
    {
        private readonly TempDir _dir = new TempDir();

        public BadInputStore()
        {
            Path = _dir.Combine("store");
            StoreInspector.Init(Path);
            for (int i = 0; i < 3; i++)
            {
                var r = Support.Cli.Run("publish", "--store", Path, "--type", "good.event", "--data", $"{{\"marker\":\"good{i}\"}}");
                Assert.Equal(0, r.ExitCode);
            }

            Small = _dir.Combine("small");
            StoreInspector.Init(Small, "--max-event-bytes", "2048", "--max-depth", "3", "--segment-max-bytes", "65536");
        }

        public string Path { get; }

        /// <summary>A store made with --max-event-bytes 2048 --max-depth 3.</summary>
        public string Small { get; }

        public string Scratch(string name) => _dir.Combine(name);

        public void Dispose() => _dir.Dispose();
    }

    public sealed class BadInputTests : IClassFixture<BadInputStore>
    {
        private readonly BadInputStore _store;

        public BadInputTests(BadInputStore store) => _store = store;

        private static string Nested(int depth)
        {
            // depth 1 is {} itself; each level adds {"a":…}
            var sb = new StringBuilder();
            for (int i = 1; i < depth; i++)
            {
                sb.Append("{\"a\":");
            }

            sb.Append("{}");
            sb.Append('}', depth - 1);
            return sb.ToString();
        }

        public static IEnumerable<object[]> BadPublishes()
        {
            object[] Case(string code, params string[] args) => new object[] { code, args };
            yield return Case("InvalidEventType", "--type", "9starts.with.digit", "--data", "{}");
            yield return Case("InvalidEventType", "--type", "has space", "--data", "{}");
            yield return Case("InvalidEventType", "--type", "trailing.", "--data", "{}");
            yield return Case("InvalidEventType", "--type", "", "--data", "{}");
            yield return Case("InvalidEventType", "--type", new string('a', 129), "--data", "{}");
            yield return Case("ReservedEventType", "--type", "bmadguard.x", "--data", "{}");
            yield return Case("ReservedEventType", "--type", "BmadGuard.Health", "--data", "{}");
            yield return Case("DataNotObject", "--type", "a.b", "--data", "[1,2,3]");
            yield return Case("DataNotObject", "--type", "a.b", "--data", "\"a string\"");
            yield return Case("DataNotObject", "--type", "a.b", "--data", "42");
            yield return Case("DataNotObject", "--type", "a.b", "--data", "null");
            yield return Case("DataNotObject", "--type", "a.b", "--data", "true");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"a\":1,\"a\":2}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"o\":{\"k\":1,\"k\":1}}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"a\":}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"a\":1,}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"a\":1} // comment");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{'a':1}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"a\":NaN}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{} {}");
            yield return Case("DataTooDeep", "--type", "a.b", "--data", Nested(65));
            yield return Case("DataTooDeep", "--type", "a.b", "--data", "{\"a\":" + new string('[', 64) + new string(']', 64) + "}");
            yield return Case("InvalidSource", "--type", "a.b", "--source", "bad source", "--data", "{}");
            yield return Case("InvalidSource", "--type", "a.b", "--source", "-dash", "--data", "{}");
            yield return Case("InvalidSource", "--type", "a.b", "--source", "agent/1", "--data", "{}");
            yield return Case("InvalidCorrelationId", "--type", "a.b", "--correlation-id", "has space", "--data", "{}");
            yield return Case("InvalidCorrelationId", "--type", "a.b", "--correlation-id", new string('c', 129), "--data", "{}");
            yield return Case("InvalidCorrelationId", "--type", "a.b", "--correlation-id", "é", "--data", "{}");
            yield return Case("InvalidArgument", "--type", "a.b", "--data", "{}", "--data-file", "/nonexistent");
            yield return Case("InvalidArgument", "--stdin", "--type", "a.b");
            yield return Case("InvalidArgument", "--data", "{}");

            // An unpaired surrogate escape (Python's json.dumps writes "\ud800" for such a string) names no character:
            // refused, never stored as U+FFFD, never an unhandled exception.
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"x\":\"\\ud800\"}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"\\ud800\":1}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"x\":\"\\udc00\"}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"x\":\"\\ud800\\u0041\"}");
            yield return Case("InvalidData", "--type", "a.b", "--data", "{\"o\":{\"k\":[\"\\ud83d\"]}}");
        }

        [Theory]
        [MemberData(nameof(BadPublishes))]
        public void Bad_input_is_exit_2_with_its_code_and_writes_nothing(string code, string[] args)
        {
            var before = StoreInspector.SnapshotSegments(_store.Path);
            var r = Support.Cli.Run(new[] { "publish", "--store", _store.Path }.Concat(args).ToArray());
            AssertRejected(r, code);
            StoreInspector.AssertUnchanged(before, _store.Path);
        }

        private static void AssertRejected(Support.Cli.Result r, string code)
        {
            Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}, stderr: {r.StdErr}");
            Assert.Equal("", r.StdOut);
            Assert.StartsWith($"bmadguard: {code}: ", r.StdErr);
            Assert.Single(r.StdErr.TrimEnd('\n').Split('\n')); // one clear line
        }

        [Fact]
        public void Nesting_exactly_at_the_limit_is_accepted()
        {
            var r = Support.Cli.Run("publish", "--store", _store.Path, "--type", "depth.ok", "--data", Nested(64));
            Assert.True(r.ExitCode == 0, r.StdErr);
        }

        [Fact]
        public void An_event_as_deep_as_the_largest_allowed_max_depth_is_stored_and_read_back_not_taken_for_a_torn_tail()
        {
            string store = _store.Scratch("deep");
            StoreInspector.Init(store, "--max-depth", "1000");
            string file = _store.Scratch("deep.json");
            File.WriteAllText(file, Nested(1000));
            var r = Support.Cli.Run("publish", "--store", store, "--type", "deep.event", "--data-file", file);
            Assert.True(r.ExitCode == 0, r.StdErr);

            // The same event through --stdin (the line wraps data in one more level).
            var viaStdin = Support.Cli.RunWithStdin("{\"type\":\"deep.event\",\"data\":" + Nested(1000) + "}\n", "publish", "--store", store, "--stdin");
            Assert.True(viaStdin.ExitCode == 0, viaStdin.StdErr);

            // Reopening must not mistake the (last, complete, acknowledged) record for a torn tail.
            var get = Support.Cli.Run("get", "--store", store);
            Assert.Equal("", get.StdErr);
            Assert.Equal(r.Lines.Concat(viaStdin.Lines), get.Lines);
            Assert.Equal(2, StoreInspector.AssertClean(store).Count);
            Assert.Empty(Directory.GetFiles(Path.Combine(store, "quarantine")));
        }

        [Fact]
        public void Data_file_with_invalid_utf8_is_InvalidUtf8()
        {
            string file = _store.Scratch("bad-utf8.json");
            File.WriteAllBytes(file, new byte[] { (byte)'{', (byte)'"', (byte)'k', (byte)'"', (byte)':', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)'}' });
            var before = StoreInspector.SnapshotSegments(_store.Path);
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data-file", file), "InvalidUtf8");
            StoreInspector.AssertUnchanged(before, _store.Path);

            // An overlong encoding and a lone surrogate half are invalid too.
            File.WriteAllBytes(file, Encoding.ASCII.GetBytes("{\"k\":\"").Concat(new byte[] { 0xC0, 0xAF }).Concat(Encoding.ASCII.GetBytes("\"}")).ToArray());
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data-file", file), "InvalidUtf8");
            File.WriteAllBytes(file, Encoding.ASCII.GetBytes("{\"k\":\"").Concat(new byte[] { 0xED, 0xA0, 0x80 }).Concat(Encoding.ASCII.GetBytes("\"}")).ToArray());
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data-file", file), "InvalidUtf8");
            StoreInspector.AssertUnchanged(before, _store.Path);
        }

        [Fact]
        public void Data_file_over_one_mebibyte_is_EventTooLarge()
        {
            string file = _store.Scratch("big.json");
            File.WriteAllText(file, "{\"big\":\"" + new string('b', 1024 * 1024) + "\"}");
            var before = StoreInspector.SnapshotSegments(_store.Path);
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data-file", file), "EventTooLarge");
            StoreInspector.AssertUnchanged(before, _store.Path);

            // A file far over any storable event is refused before it is read (memory bounded by the limit).
            using (var huge = File.Create(_store.Scratch("huge.json")))
            {
                huge.SetLength(16L * 1024 * 1024);
            }

            var hugeRun = Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data-file", _store.Scratch("huge.json"));
            AssertRejected(hugeRun, "EventTooLarge");
            Assert.Contains("it was not read", hugeRun.StdErr);
            StoreInspector.AssertUnchanged(before, _store.Path);

            // Just under the limit is fine (the limit is on the whole stored record).
            File.WriteAllText(file, "{\"big\":\"" + new string('b', 1024 * 1024 - 1024) + "\"}");
            var ok = Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data-file", file);
            Assert.True(ok.ExitCode == 0, ok.StdErr);
        }

        [Fact]
        public void A_store_made_with_max_event_bytes_and_max_depth_enforces_them()
        {
            var before = StoreInspector.SnapshotSegments(_store.Small);
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Small, "--type", "a.b", "--data", "{\"s\":\"" + new string('s', 2100) + "\"}"), "EventTooLarge");
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Small, "--type", "a.b", "--data", Nested(4)), "DataTooDeep");
            StoreInspector.AssertUnchanged(before, _store.Small);
            var ok = Support.Cli.Run("publish", "--store", _store.Small, "--type", "a.b", "--data", Nested(3));
            Assert.True(ok.ExitCode == 0, ok.StdErr);

            // The same limits apply to --stdin lines.
            before = StoreInspector.SnapshotSegments(_store.Small);
            var r = Support.Cli.RunWithStdin("{\"type\":\"a.b\",\"data\":{\"s\":\"" + new string('s', 2100) + "\"}}\n", "publish", "--store", _store.Small, "--stdin");
            Assert.Equal(2, r.ExitCode);
            Assert.StartsWith("bmadguard: EventTooLarge: line 1: ", r.StdErr);
            StoreInspector.AssertUnchanged(before, _store.Small);
        }

        [Fact]
        public void Stdin_lines_with_invalid_utf8_or_bad_fields_are_rejected_with_their_line_number_and_not_written()
        {
            var lines = new List<byte[]>
            {
                Encoding.UTF8.GetBytes("{\"type\":\"stdin.good\",\"data\":{\"marker\":\"sg1\"}}\n"),
                Encoding.ASCII.GetBytes("{\"type\":\"a.b\",\"data\":{\"k\":\"").Concat(new byte[] { 0xFF }).Concat(Encoding.ASCII.GetBytes("\"}}\n")).ToArray(),
                Encoding.UTF8.GetBytes("{\"type\":\"a.b\",\"data\":{\"k\":1,\"k\":2}}\n"),
                Encoding.UTF8.GetBytes("{\"type\":\"bmadguard.x\",\"data\":{}}\n"),
                Encoding.UTF8.GetBytes("{\"type\":\"a.b\",\"data\":[1]}\n"),
                Encoding.UTF8.GetBytes("{\"type\":\"a.b\",\"source\":\"bad source\"}\n"),
                Encoding.UTF8.GetBytes("not json\n"),
                Encoding.UTF8.GetBytes("{\"type\":\"stdin.good\",\"data\":{\"marker\":\"sg2\"}}\n"),
            };
            int before = StoreInspector.AssertClean(_store.Path).Count;
            using var p = CliProcess.Start(true, "publish", "--store", _store.Path, "--stdin");
            foreach (var l in lines)
            {
                p.StdIn.BaseStream.Write(l);
            }

            p.StdIn.Close();
            Assert.Equal(2, p.Wait());
            // Each bad line is named by its number, whether the line parser or the store's checks caught it.
            string[] errors = p.StdErr.TrimEnd('\n').Split('\n');
            // Format: "bmadguard: <Code>: line <N>: <message>", in line order.
            Assert.Equal(new[] { "InvalidUtf8: line 2:", "InvalidData: line 3:", "ReservedEventType: line 4:", "DataNotObject: line 5:", "InvalidSource: line 6:", "InvalidData: line 7:" },
                errors.Select(e => string.Join(' ', e.Split(' ').Skip(1).Take(3))).ToArray());
            Assert.All(errors, e => Assert.StartsWith("bmadguard: ", e));

            // The good lines are published (and acknowledged), the bad ones are not.
            Assert.Equal(new[] { "sg1", "sg2" }, p.Acks().Select(a => a.Marker));
            var records = StoreInspector.AssertClean(_store.Path);
            Assert.Equal(before + 2, records.Count);
            Assert.Equal(new[] { "sg1", "sg2" }, records.Skip(before).Select(r => r.Marker));
        }

        [Fact]
        public void A_stdin_batch_publishes_every_good_line_in_order_and_names_each_bad_one_surrogates_included()
        {
            // The --stdin contract: good lines acknowledged in input order after their fsync, each bad line written
            // nowhere and named by its number, processing continues, exit 2 at EOF. Before: one "\ud800" line was an
            // unhandled exception (exit 1) that dropped the whole batch, good lines included.
            string store = _store.Scratch("stdin-contract");
            StoreInspector.Init(store);
            string Good(int i) => "{\"type\":\"stdin.good\",\"data\":{\"marker\":\"c" + i + "\"}}\n";
            string input = Good(1)
                + "{\"type\":\"a.b\",\"data\":{\"x\":\"\\ud800\"}}\n"        // line 2: data value
                + Good(3)
                + "{\"type\":\"a.b\",\"data\":{\"\\udfff\":1}}\n"            // line 4: data key
                + "{\"type\":\"a.b\",\"source\":\"\\ud800\",\"data\":{}}\n"   // line 5: source
                + "{\"type\":\"a\\ud800.b\",\"data\":{}}\n"                   // line 6: type
                + "{\"\\ud800\":1}\n"                                          // line 7: a line key
                + "\n"                                                          // line 8: blank, skipped
                + Good(9);
            var r = Support.Cli.RunWithStdin(input, "publish", "--store", store, "--stdin");
            Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.StdErr}");
            Assert.DoesNotContain("   at ", r.StdErr);
            string[] errors = r.StdErr.TrimEnd('\n').Split('\n');
            Assert.Equal(new[] { 2, 4, 5, 6, 7 }, errors.Select(e => int.Parse(e.Split(' ')[3].TrimEnd(':'))).ToArray());
            Assert.All(errors, e => Assert.StartsWith("bmadguard: InvalidData: line ", e));
            Assert.Equal(new[] { "c1", "c3", "c9" }, r.Lines.Select(l => CliProcess.ParseAck(l).Marker));
            Assert.Equal(new[] { "c1", "c3", "c9" }, StoreInspector.AssertClean(store).Select(e => e.Marker));
        }

        [Fact]
        public void Stdin_with_spool_follows_the_same_per_line_contract()
        {
            // Before: one bad line failed the whole --spool run and nothing was published, not even the good lines.
            string store = _store.Scratch("stdin-spool");
            StoreInspector.Init(store, "--max-event-bytes", "2048");
            string input = "{\"type\":\"spool.good\",\"data\":{\"marker\":\"s1\"}}\n"
                + "{\"type\":\"a.b\",\"data\":{\"x\":\"\\ud800\"}}\n"
                + "{\"type\":\"a.b\",\"data\":{\"s\":\"" + new string('s', 3000) + "\"}}\n"   // over this store's own limit
                + "{\"type\":\"spool.good\",\"data\":{\"marker\":\"s4\"}}\n";
            var r = Support.Cli.RunWithStdin(input, "publish", "--store", store, "--stdin", "--spool");
            Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.StdErr}");
            Assert.Equal(new[] { "bmadguard: InvalidData: line 2:", "bmadguard: EventTooLarge: line 3:" },
                r.StdErr.TrimEnd('\n').Split('\n').Select(e => string.Join(' ', e.Split(' ').Take(4))).ToArray());
            Assert.Equal(new[] { "s1", "s4" }, r.Lines.Select(l => CliProcess.ParseAck(l).Marker));
            Assert.Equal(new[] { "s1", "s4" }, StoreInspector.AssertClean(store).Select(e => e.Marker));
        }

        [Fact]
        public void A_utf8_bom_at_the_start_of_stdin_is_skipped_like_data_file_does()
        {
            string store = _store.Scratch("stdin-bom");
            StoreInspector.Init(store);
            var r = Support.Cli.RunWithStdin("\uFEFF{\"type\":\"bom.first\",\"data\":{\"marker\":\"b1\"}}\n{\"type\":\"bom.next\",\"data\":{\"marker\":\"b2\"}}\n",
                "publish", "--store", store, "--stdin");
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.Equal(new[] { "b1", "b2" }, StoreInspector.AssertClean(store).Select(e => e.Marker));
        }

        [Fact]
        public void A_data_argument_with_a_raw_invalid_utf8_byte_is_InvalidUtf8_not_stored_as_a_replacement_character()
        {
            // .NET decodes argv leniently (0xFF -> U+FFFD); only a shell can hand the raw byte over.
            var before = StoreInspector.SnapshotSegments(_store.Path);
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("exec dotnet \"$1\" publish --store \"$2\" --type a.b --data \"$(printf '{\"k\":\"\\377\"}')\"");
            psi.ArgumentList.Add("bash");
            psi.ArgumentList.Add(Support.Cli.DllPath);
            psi.ArgumentList.Add(_store.Path);
            using var p = Process.Start(psi)!;
            string stderr = p.StandardError.ReadToEnd();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            AssertRejected(new Support.Cli.Result(p.ExitCode, stdout, stderr), "InvalidUtf8");
            StoreInspector.AssertUnchanged(before, _store.Path);

            // A real U+FFFD typed by the user is text like any other and is kept.
            var ok = Support.Cli.Run("publish", "--store", _store.Small, "--type", "a.b", "--data", "{\"k\":\"\uFFFD\"}");
            Assert.True(ok.ExitCode == 0, ok.StdErr);
        }

        [Fact]
        public void An_over_long_stdin_line_is_skipped_to_its_newline_with_memory_bounded_by_the_event_limit()
        {
            // Before: one 100 MB line took 1.45 GB RSS. The line is read through in fixed chunks, reported as
            // EventTooLarge by its number, and the next line still goes. VmHWM is the process's peak RSS, read
            // while it is still running (stdin held open) after it acknowledged the line behind the long one.
            string store = _store.Scratch("stdin-long");
            StoreInspector.Init(store);
            const int LongBytes = 48 * 1024 * 1024;
            using var p = CliProcess.Start(true, "publish", "--store", store, "--stdin");
            var stdin = p.StdIn.BaseStream;
            stdin.Write(Encoding.UTF8.GetBytes("{\"type\":\"long.before\",\"data\":{\"marker\":\"l1\"}}\n{\"type\":\"a.b\",\"data\":{\"x\":\""));
            byte[] chunk = Enumerable.Repeat((byte)'x', 1 << 20).ToArray();
            for (int i = 0; i < LongBytes / chunk.Length; i++)
            {
                stdin.Write(chunk);
            }

            stdin.Write(Encoding.UTF8.GetBytes("\"}}\n{\"type\":\"long.after\",\"data\":{\"marker\":\"l3\"}}\n"));
            stdin.Flush();
            var clock = Stopwatch.StartNew();
            while (p.Acks().Count < 2 && !p.Process.HasExited)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "line 3 was never acknowledged: " + p.StdErr);
                System.Threading.Thread.Sleep(20);
            }

            long peakKb = PeakRssKb(p.Process.Id);
            p.StdIn.Close();
            Assert.Equal(2, p.Wait());
            Assert.Equal(new[] { "l1", "l3" }, p.Acks().Select(a => a.Marker));
            Assert.StartsWith("bmadguard: EventTooLarge: line 2: ", p.StdErr);
            Assert.Single(p.StdErr.TrimEnd('\n').Split('\n'));
            Assert.Equal(new[] { "l1", "l3" }, StoreInspector.AssertClean(store).Select(e => e.Marker));
            // A 48 MiB line held in memory costs well over 150 MB (buffer, copy, parse); bounded reading stays near
            // the runtime's own footprint (about 45 MB measured).
            Assert.True(peakKb < 150 * 1024, $"peak RSS {peakKb} kB for a {LongBytes} byte line");
        }

        private static long PeakRssKb(int pid)
        {
            foreach (string line in File.ReadAllLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line.Substring(6).Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                }
            }

            throw new InvalidOperationException("no VmHWM in /proc/" + pid + "/status");
        }

        [Fact]
        public void A_missing_store_is_exit_1_StoreNotFound_and_creates_nothing()
        {
            string missing = _store.Scratch("no-such-store");
            foreach (var args in new[]
                     {
                         new[] { "publish", "--store", missing, "--type", "a.b", "--data", "{}" },
                         new[] { "get", "--store", missing },
                         new[] { "stats", "--store", missing },
                     })
            {
                var r = Support.Cli.Run(args);
                Assert.Equal(1, r.ExitCode);
                Assert.StartsWith("bmadguard: StoreNotFound: ", r.StdErr);
                Assert.False(Directory.Exists(missing), args[0] + " created the store directory");
            }
        }

        [Fact]
        public void A_held_lock_is_exit_1_LockTimeout_after_the_timeout_and_nothing_is_written()
        {
            var before = StoreInspector.SnapshotSegments(_store.Path);
            var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import fcntl,sys,time\nf=open(sys.argv[1],'a+b')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(60)");
            psi.ArgumentList.Add(Path.Combine(_store.Path, "writer.lock"));
            using (var holder = CliProcess.Wrap(Process.Start(psi)!))
            {
                var clock = Stopwatch.StartNew();
                while (!holder.Lines().Contains("locked"))
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30) && !holder.Process.HasExited, "python did not take the lock: " + holder.StdErr);
                    System.Threading.Thread.Sleep(10);
                }

                var r = Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data", "{\"marker\":\"blocked\"}", "--lock-timeout", "0.5");
                Assert.Equal(1, r.ExitCode);
                Assert.StartsWith("bmadguard: LockTimeout: ", r.StdErr);
                Assert.Contains("writer.lock", r.StdErr);
                Assert.Empty(r.Lines);
                var batch = Support.Cli.RunWithStdin("{\"type\":\"a.b\",\"data\":{\"marker\":\"blocked2\"}}\n", "publish", "--store", _store.Path, "--stdin", "--lock-timeout", "0.5");
                Assert.Equal(1, batch.ExitCode);
                Assert.Contains("LockTimeout", batch.StdErr);
                StoreInspector.AssertUnchanged(before, _store.Path);

                // Reading needs no lock.
                Assert.Equal(0, Support.Cli.Run("get", "--store", _store.Path, "--last", "1").ExitCode);

                holder.Kill(); // the OS frees the lock when its holder dies
                holder.Wait();
            }

            var after = Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data", "{\"marker\":\"unblocked\"}", "--lock-timeout", "10");
            Assert.True(after.ExitCode == 0, after.StdErr);
        }

        [Fact]
        public void Bad_lock_timeout_and_bad_get_arguments_are_exit_2()
        {
            AssertRejected(Support.Cli.Run("publish", "--store", _store.Path, "--type", "a.b", "--data", "{}", "--lock-timeout", "-1"), "InvalidArgument");
            AssertRejected(Support.Cli.Run("get", "--store", _store.Path, "--since", "yesterday"), "InvalidArgument");
            AssertRejected(Support.Cli.Run("get", "--store", _store.Path, "--consumer", "../escape"), "InvalidConsumerName");
            AssertRejected(Support.Cli.Run("get", "--store", _store.Path, "--last", "-1"), "InvalidArgument");
        }

        // ------------------------------------------------------------ object graphs (the PowerShell path), in Core

        private sealed class Opaque
        {
            public int X { get; } = 1;
        }

        public static IEnumerable<object[]> BadGraphs()
        {
            var cycle = new Hashtable();
            cycle["self"] = cycle;
            var listCycle = new ArrayList();
            listCycle.Add(listCycle);
            var deepCycle = new Hashtable { ["a"] = new Hashtable { ["b"] = new ArrayList { 1, 2 } } };
            ((ArrayList)((Hashtable)deepCycle["a"]!)["b"]!).Add(deepCycle);
            var dupKeys = new Hashtable { [1] = "int", ["1"] = "string" };
            var tooDeep = new Hashtable();
            var cur = tooDeep;
            for (int i = 0; i < 70; i++)
            {
                var next = new Hashtable();
                cur["n"] = next;
                cur = next;
            }

            // The legacy bus's incident: a bad value after many good ones must not leave half an event.
            var lateBad = new Hashtable();
            for (int i = 0; i < 500; i++)
            {
                lateBad["k" + i] = new string('v', 100);
            }

            lateBad["zz-last"] = new Opaque();

            object[] Case(string code, object? data) => new[] { code, data! };
            yield return Case("UnserializableData", cycle);
            yield return Case("UnserializableData", new Hashtable { ["list"] = listCycle });
            yield return Case("UnserializableData", deepCycle);
            yield return Case("UnserializableData", new Hashtable { ["nan"] = double.NaN });
            yield return Case("UnserializableData", new Hashtable { ["inf"] = double.PositiveInfinity });
            yield return Case("UnserializableData", new Hashtable { ["finf"] = float.NegativeInfinity });
            yield return Case("UnserializableData", new Hashtable { ["obj"] = new object() });
            yield return Case("UnserializableData", new Hashtable { ["opaque"] = new Opaque() });
            yield return Case("UnserializableData", new Hashtable { ["stream"] = new MemoryStream() });
            yield return Case("UnserializableData", new Hashtable { ["ptr"] = IntPtr.Zero });
            yield return Case("UnserializableData", lateBad);
            yield return Case("InvalidData", dupKeys);
            yield return Case("DataTooDeep", tooDeep);
            yield return Case("DataNotObject", new ArrayList { 1, 2 });
            yield return Case("DataNotObject", 42);
            yield return Case("DataNotObject", "[1,2]");
            yield return Case("InvalidData", "{not json");
        }

        [Theory]
        [MemberData(nameof(BadGraphs))]
        public void Object_graphs_that_cannot_be_stored_are_rejected_and_the_whole_batch_writes_nothing(string code, object data)
        {
            var before = StoreInspector.SnapshotSegments(_store.Path);
            using var store = FileEventStore.Open(_store.Path);
            var drafts = new[]
            {
                EventDraft.FromObject("graph.good", "ps", null, new Hashtable { ["marker"] = "before-bad" }),
                EventDraft.FromObject("graph.bad", "ps", null, data),
                EventDraft.FromObject("graph.good", "ps", null, new Hashtable { ["marker"] = "after-bad" }),
            };
            int acks = 0;
            var ex = Assert.Throws<BmadGuardException>(() => store.Publish(drafts, _ => acks++));
            Assert.Equal(code, ex.Code);
            Assert.Equal(FailureKind.InvalidInput, ex.Kind);
            Assert.Equal(0, acks);
            StoreInspector.AssertUnchanged(before, _store.Path);
        }

        [Fact]
        public void PublishEach_rejects_each_bad_draft_by_index_and_appends_the_good_ones_in_order_under_one_batch()
        {
            string path = _store.Scratch("publish-each");
            StoreInspector.Init(path, "--max-event-bytes", "2048");
            using var store = FileEventStore.Open(path);
            var drafts = new[]
            {
                EventDraft.FromObject("each.good", "ps", null, new Hashtable { ["marker"] = "e0" }),
                EventDraft.FromObject("each.bad", "ps", null, new Hashtable { ["k\uD800"] = 1 }),             // unpaired surrogate in a key
                EventDraft.FromJson("each.good", "ps", null, "{\"marker\":\"e2\"}"),
                EventDraft.FromJson("each.bad", "ps", null, "{\"s\":\"" + new string('s', 3000) + "\"}"), // over this store's limit
                EventDraft.FromJson("each.bad", "ps", null, "{\"x\":\"\\ud800\"}"),                     // unpaired escape
                EventDraft.FromJson("each.bad", "ps", null, "{\"x\":\"\uDC00\"}"),                       // unpaired char in JSON text
                EventDraft.FromObject("each.good", "ps", null, new Hashtable { ["marker"] = "e6" }),
            };
            var acked = new List<(int Index, long Seq)>();
            var result = store.PublishEach(drafts, (i, r) => acked.Add((i, r.Seq)));
            Assert.Equal(new[] { (1, "InvalidData"), (3, "EventTooLarge"), (4, "InvalidData"), (5, "InvalidData") },
                result.Rejected.Select(r => (r.Index, r.Error.Code)).ToArray());
            Assert.Equal(new[] { (0, 1L), (2, 2L), (6, 3L) }, acked.ToArray());
            Assert.Equal(new[] { "e0", "e2", "e6" }, StoreInspector.AssertClean(path).Select(e => e.Marker));
        }

        [Fact]
        public void Object_graphs_that_can_be_stored_come_back_as_the_same_json()
        {
            using var store = FileEventStore.Open(_store.Path);
            var data = new Hashtable
            {
                ["marker"] = "graph-ok",
                ["list"] = new ArrayList { 1, "two", 3.5, true, null },
                ["nested"] = new Dictionary<string, object?> { ["when"] = new DateTimeOffset(2026, 11, 22, 1, 2, 3, TimeSpan.Zero), ["id"] = Guid.Empty },
                ["big"] = 12345678901234L,
                ["dec"] = 1.25m,
            };
            var r = store.Publish(EventDraft.FromObject("graph.ok", "ps", null, data));
            var stored = store.Read(new EventQuery { After = r.Seq - 1 }).Single();
            using var doc = System.Text.Json.JsonDocument.Parse(stored.DataJson);
            var root = doc.RootElement;
            Assert.Equal("two", root.GetProperty("list")[1].GetString());
            Assert.Equal(System.Text.Json.JsonValueKind.Null, root.GetProperty("list")[4].ValueKind);
            Assert.Equal("2026-11-22T01:02:03.0000000+00:00", root.GetProperty("nested").GetProperty("when").GetString());
            Assert.Equal(12345678901234L, root.GetProperty("big").GetInt64());
            Assert.Equal(1.25m, root.GetProperty("dec").GetDecimal());
        }
    }
}
