using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Bench
{
    internal sealed class Scenarios
    {
        private readonly BenchConfig _config;
        private readonly string _root;
        private readonly int _pad;
        private readonly int _recordBytes;
        private readonly EventDraft _draft;
        private readonly byte[] _rawLine;
        private readonly Action<string> _log;
        private int _next;

        public Scenarios(BenchConfig config, string root, int pad, int recordBytes, Action<string> log)
        {
            _config = config;
            _root = root;
            _pad = pad;
            _recordBytes = recordBytes;
            _draft = Workload.Draft(pad);
            _rawLine = Workload.RawLines(recordBytes, 1);
            _log = log;
        }

        /// <summary>Scenario 1's raw-loop samples (ops/s), reused as the baseline of scenario 5.</summary>
        public List<double> RawLoopRates { get; } = new List<double>();

        private string NewPath(string name) => Path.Combine(_root, $"{Interlocked.Increment(ref _next):D2}-{name}");

        private Sample RawLoop(RawLog raw) => Harness.RunFor(_config.RepDuration, () => raw.AppendDurably(_rawLine, 1));

        // ------------------------------------------------------------------ 1 and 2

        /// <summary>1: raw append+fsync loop; 2: durable single publish, interleaved with it.</summary>
        public IEnumerable<Row> SinglePublish()
        {
            _log("1-2: raw append+fsync loop vs durable single publish");
            using var raw = new RawLog(NewPath("raw-single.log"));
            using var store = FileEventStore.Initialize(NewPath("store-single"), null, null, out _);
            Harness.RunFor(_config.Warmup, () => raw.AppendDurably(_rawLine, 1));
            Harness.RunFor(_config.Warmup, () => Publish1(store));

            var pairs = Harness.Interleave(_config.SlicePairs,
                () => Harness.RunFor(_config.SliceDuration, () => raw.AppendDurably(_rawLine, 1)),
                () => Harness.RunFor(_config.SliceDuration, () => Publish1(store)));
            var rawRates = pairs.Baseline.Select(s => s.Rate).ToArray();
            RawLoopRates.AddRange(rawRates);
            var pubRates = pairs.Candidate.Select(s => s.Rate).ToArray();
            yield return new Row
            {
                Id = "1",
                Name = "raw append+fsync loop (baseline)",
                Unit = "ops/s",
                Value = Harness.Median(rawRates),
                Samples = rawRates,
                Note = $"FileStream opened once, one {_recordBytes}-byte write + Flush(true) per op; {_config.SlicePairs} slices of {_config.SliceDuration.TotalSeconds:0.0} s interleaved with row 2",
            };
            yield return Report.Ratio("2", "durable single publish", "ops/s", "1 raw loop", pubRates, rawRates, pairs.RateRatios,
                "ratio >= 0.8", r => r >= 0.8, "FileEventStore.Publish(draft): one event, lock + fsync per call").WithCost(pairs);
        }

        private int Publish1(FileEventStore store)
        {
            store.Publish(_draft);
            return 1;
        }

        // ------------------------------------------------------------------ 3

        /// <summary>3: per-event cost of a fixed batch window in a store of 1k events vs 1M (100k with --quick).</summary>
        public IEnumerable<Row> CostAtSize()
        {
            int large = _config.LargeStoreEvents;
            _log($"3: filling a store to {large:N0} events");
            string bigPath = NewPath("store-large");
            var fillBatch = Workload.Batch(_draft, 10_000);
            var window = Workload.Batch(_draft, _config.WindowBatch);
            var fillRates = new List<double>();
            using (var big = FileEventStore.Initialize(bigPath, null, null, out _))
            {
                long count = 0;
                while (count < large)
                {
                    var s = Harness.RunCalls(1, () => big.Publish(fillBatch).Count);
                    fillRates.Add(s.Rate);
                    count += s.Events;
                }

                // Warm the window path on both sides before measuring.
                Window(big, window, 2);
                _log($"3: measuring windows of {_config.WindowCalls} x {_config.WindowBatch} events at {SizeLabel(_config.SmallStoreEvents)} and {SizeLabel(large)}");
                long before = count + (2L * _config.WindowBatch);
                var pairs = new Paired(new List<Sample>(), new List<Sample>());
                for (int rep = 0; rep < _config.CostReps; rep++)
                {
                    var (smallWindow, bigWindow) = AlternatingWindow(big, window);
                    pairs.Baseline.Add(smallWindow);
                    pairs.Candidate.Add(bigWindow);
                }

                long after = before + ((long)_config.CostReps * _config.WindowCalls * _config.WindowBatch);
                var small = pairs.Baseline.Select(s => s.MicrosPerEvent).ToArray();
                var bigCost = pairs.Candidate.Select(s => s.MicrosPerEvent).ToArray();
                yield return Report.Ratio("3", $"per-event cost at {SizeLabel(large)} events vs at 1k", "us/event", "at 1k events", bigCost, small, pairs.CostRatios,
                    "ratio <= 1.2", r => r <= 1.2,
                    $"window = {_config.WindowCalls} Publish calls of {_config.WindowBatch:N0} events (one fsync each) on each store, calls alternating between the two, {_config.CostReps} windows; "
                    + $"the big store holds {before:N0} events at the first window, {after:N0} after the last; CPU per event is the size-independent part"
                    + (_config.Quick ? $"; --quick: {SizeLabel(large)} instead of 1M events" : "")).WithCost(pairs);

                yield return new Row
                {
                    Id = "3.fill",
                    Name = $"batch publish rate while filling to {SizeLabel(large)}",
                    Unit = "events/s",
                    Value = Harness.Median(fillRates),
                    Samples = fillRates.ToArray(),
                    Note = $"10,000 events per Publish call; first vs last tenth of the fill: {Report.Format(Harness.Median(fillRates.Take(Math.Max(1, fillRates.Count / 10))))} vs {Report.Format(Harness.Median(fillRates.Skip(fillRates.Count - Math.Max(1, fillRates.Count / 10))))} events/s",
                };
            }

            // Opening is not on the publish path, but a store that takes O(n) to open would show here.
            var opens = Harness.Interleave(_config.Reps, () => OpenOnce(SmallStore()), () => OpenOnce(bigPath));
            yield return Report.Ratio("3.open", $"open a store of {SizeLabel(large)} events vs 1k", "ms", "1k events",
                opens.Candidate.Select(s => s.Seconds * 1000).ToArray(), opens.Baseline.Select(s => s.Seconds * 1000).ToArray(),
                opens.CostRatios, note: "FileEventStore.Open (settings, permissions, tail check); informational");
            DeleteQuietly(bigPath);
        }

        private static string SizeLabel(int n) => n >= 1_000_000 ? $"{n / 1_000_000}M" : n >= 1_000 ? $"{n / 1_000}k" : n.ToString();

        private string SmallStore()
        {
            string path = NewPath("store-1k");
            using var store = FileEventStore.Initialize(path, null, null, out _);
            store.Publish(Workload.Batch(_draft, _config.SmallStoreEvents));
            return path;
        }

        /// <summary>
        /// One window on a fresh 1k-event store and one on the big store, with their Publish calls alternating
        /// (small, big, big, small, …) so that a change in the disk's latency during the window hits both alike.
        /// </summary>
        private (Sample Small, Sample Big) AlternatingWindow(FileEventStore big, EventDraft[] window)
        {
            string path = SmallStore();
            try
            {
                using var store = FileEventStore.Open(path);
                var small = new Sample(0, 0, 0, 0);
                var large = new Sample(0, 0, 0, 0);
                for (int call = 0; call < _config.WindowCalls; call++)
                {
                    if (call % 2 == 0)
                    {
                        small = Add(small, Harness.RunCalls(1, () => store.Publish(window).Count));
                        large = Add(large, Harness.RunCalls(1, () => big.Publish(window).Count));
                    }
                    else
                    {
                        large = Add(large, Harness.RunCalls(1, () => big.Publish(window).Count));
                        small = Add(small, Harness.RunCalls(1, () => store.Publish(window).Count));
                    }
                }

                return (small, large);
            }
            finally
            {
                DeleteQuietly(path);
            }
        }

        private static Sample Add(Sample a, Sample b) => new Sample(a.Events + b.Events, a.Seconds + b.Seconds, a.CpuSeconds + b.CpuSeconds, a.AllocatedBytes + b.AllocatedBytes);

        private static Sample Window(FileEventStore store, EventDraft[] batch, int calls) => Harness.RunCalls(calls, () => store.Publish(batch).Count);

        private static Sample OpenOnce(string path)
        {
            var clock = Stopwatch.StartNew();
            using (FileEventStore.Open(path))
            {
            }

            return new Sample(1, clock.Elapsed.TotalSeconds);
        }

        // ------------------------------------------------------------------ 4

        /// <summary>4: batch publish throughput, and the same bytes written raw with one fsync per batch.</summary>
        public IEnumerable<Row> BatchThroughput()
        {
            foreach (int size in _config.BatchSizes)
            {
                _log($"4: batches of {size:N0}");
                string storePath = NewPath($"store-batch-{size}");
                string rawPath = NewPath($"raw-batch-{size}.log");
                using (var store = FileEventStore.Initialize(storePath, null, null, out _))
                using (var raw = new RawLog(rawPath))
                {
                    var batch = Workload.Batch(_draft, size);
                    byte[] rawBatch = Workload.RawLines(_recordBytes, size);
                    int calls = Math.Max(1, _config.BatchEventsPerRep / size);
                    Harness.RunCalls(Math.Max(2, calls / 5), () => store.Publish(batch).Count);
                    Harness.RunCalls(Math.Max(2, calls / 5), () => raw.AppendDurably(rawBatch, size));
                    var pairs = Harness.Interleave(_config.Reps,
                        () => Harness.RunCalls(calls, () => raw.AppendDurably(rawBatch, size)),
                        () => Harness.RunCalls(calls, () => store.Publish(batch).Count));
                    var pub = pairs.Candidate.Select(s => s.Rate).ToArray();
                    var rawRates = pairs.Baseline.Select(s => s.Rate).ToArray();
                    double median = Harness.Median(pub);
                    var row = Report.Ratio($"4.{size}", $"batch publish, {size:N0} events per call", "events/s", "raw, same bytes, 1 fsync/batch",
                        pub, rawRates, pairs.RateRatios, ">= 200,000 events/s", note: $"{calls} calls per repetition; ratio is informational").WithCost(pairs);
                    row.Note += $"; {row.AllocatedBytesPerEvent:0} bytes allocated per event; one-core ceiling at this CPU cost: {Report.Format(1e6 / row.CpuMicrosPerEvent!.Value)} events/s";
                    row.Met = median >= 200_000;
                    yield return row;
                }

                DeleteQuietly(storePath);
                DeleteQuietly(rawPath);
            }
        }

        // ------------------------------------------------------------------ 5

        /// <summary>5: four publisher processes doing single durable publishes at once.</summary>
        public IEnumerable<Row> ConcurrentProcesses()
        {
            string storePath = NewPath("store-concurrent");
            using (FileEventStore.Initialize(storePath, null, null, out _))
            {
            }

            using var raw = new RawLog(NewPath("raw-concurrent.log"));
            var aggregate = new List<double>();
            var baseline = new List<double>();
            var ratios = new List<double>();
            var notes = new List<string>();
            long expected = 0;
            for (int rep = 0; rep < _config.ConcurrentReps; rep++)
            {
                _log($"5: {_config.Publishers} publisher processes for {_config.ConcurrentDuration.TotalSeconds:0} s (rep {rep + 1}/{_config.ConcurrentReps})");
                double before = RawLoop(raw).Rate;
                var result = RunWorkers(storePath, _config.Publishers);
                double after = RawLoop(raw).Rate;
                expected += result.Events + result.Warmup;
                double rawRate = (before + after) / 2;
                aggregate.Add(result.Rate);
                baseline.Add(rawRate);
                ratios.Add(result.Rate / rawRate);
                notes.Add(result.Describe());
            }

            // Exactly the acknowledged events, contiguous seqs, every checksum good (Read checks all three).
            _log("5: verifying the store");
            long found;
            using (var store = FileEventStore.Open(storePath))
            {
                found = store.GetStatistics().TotalEvents;
            }

            string verified = found == expected ? $"store verified: {found:N0} events, contiguous, checksums good" : $"STORE MISMATCH: {found:N0} events, {expected:N0} acknowledged";
            yield return Report.Ratio("5", $"{_config.Publishers} publisher processes, single durable publishes", "events/s", "raw loop (before+after)/2",
                aggregate.ToArray(), baseline.ToArray(), ratios.ToArray(), "(ratio reported)", note: verified + "; " + string.Join("; ", notes));

            if (RawLoopRates.Count > 0)
            {
                double raw1 = Harness.Median(RawLoopRates);
                yield return new Row
                {
                    Id = "5.vs1",
                    Name = "same aggregate / scenario 1 raw loop median",
                    Unit = "events/s",
                    Value = Harness.Median(aggregate),
                    Baseline = "1 raw loop",
                    BaselineValue = raw1,
                    Ratio = Harness.Median(aggregate) / raw1,
                    Note = "the same ratio against the raw loop measured in scenario 1 of this run",
                    Samples = aggregate.ToArray(),
                };
            }

            _log("5: one publisher process (same harness), for comparison");
            double rawBefore = RawLoop(raw).Rate;
            var single = RunWorkers(storePath, 1);
            double rawAfter = RawLoop(raw).Rate;
            yield return new Row
            {
                Id = "5.one",
                Name = "1 publisher process (same worker harness)",
                Unit = "events/s",
                Value = single.Rate,
                Baseline = "raw loop (before+after)/2",
                BaselineValue = (rawBefore + rawAfter) / 2,
                Ratio = single.Rate / ((rawBefore + rawAfter) / 2),
                Note = "separates the cost of a separate process from the cost of lock contention; informational; " + single.Describe(),
                Samples = new[] { single.Rate },
            };
            DeleteQuietly(storePath);
        }

        private WorkersResult RunWorkers(string storePath, int count)
        {
            // All workers start at the same instant, after their runtime has started and JIT-compiled the path.
            var startAt = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            var processes = new List<Process>();
            for (int i = 0; i < count; i++)
            {
                var psi = SelfStartInfo();
                foreach (string a in new[] { "--worker", "--store", storePath, "--start-ticks", startAt.Ticks.ToString(), "--duration-ms",
                             ((long)_config.ConcurrentDuration.TotalMilliseconds).ToString(), "--pad", _pad.ToString() })
                {
                    psi.ArgumentList.Add(a);
                }

                psi.RedirectStandardOutput = true;
                psi.RedirectStandardError = true;
                psi.UseShellExecute = false;
                processes.Add(Process.Start(psi)!);
            }

            var results = new List<WorkerResult>();
            foreach (var p in processes)
            {
                var stderrTask = p.StandardError.ReadToEndAsync();
                var stdoutTask = p.StandardOutput.ReadToEndAsync();
                var limit = startAt + _config.ConcurrentDuration + TimeSpan.FromSeconds(60) - DateTime.UtcNow;
                if (!p.WaitForExit((int)Math.Max(1000, limit.TotalMilliseconds)))
                {
                    foreach (var q in processes)
                    {
                        try
                        {
                            q.Kill(); // only the workers this bench started
                        }
                        catch (InvalidOperationException)
                        {
                        }
                    }

                    throw new TimeoutException($"worker {p.Id} did not finish within a minute after its window");
                }

                p.WaitForExit();
                string stdout = stdoutTask.Result;
                string stderr = stderrTask.Result;
                if (p.ExitCode != 0)
                {
                    throw new InvalidOperationException($"worker {p.Id} exited with {p.ExitCode}: {stderr.Trim()} {stdout.Trim()}");
                }

                results.Add(JsonSerializer.Deserialize<WorkerResult>(stdout.Trim().Split('\n').Last(), Worker.JsonOptions)!);
            }

            return new WorkersResult(results, _config.ConcurrentDuration.TotalSeconds);
        }

        /// <summary>Starts this bench binary again (apphost, or 'dotnet BmadGuard.Bench.dll').</summary>
        private static ProcessStartInfo SelfStartInfo()
        {
            string? exe = Environment.ProcessPath;
            string dll = typeof(Scenarios).Assembly.Location;
            if (exe == null || Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            {
                var psi = new ProcessStartInfo(exe ?? "dotnet");
                psi.ArgumentList.Add(dll);
                return psi;
            }

            return new ProcessStartInfo(exe);
        }

        private sealed class WorkersResult
        {
            public WorkersResult(List<WorkerResult> workers, double seconds)
            {
                Workers = workers;
                Seconds = seconds;
            }

            public List<WorkerResult> Workers { get; }

            public double Seconds { get; }

            public long Events => Workers.Sum(w => w.Events);

            public long Warmup => Workers.Sum(w => w.Warmup);

            /// <summary>Aggregate events/s over the common window.</summary>
            public double Rate => Events / Seconds;

            public string Describe() =>
                $"per process {string.Join("/", Workers.Select(w => w.Events))} events, errors {Workers.Sum(w => w.Errors)}, latest start {Workers.Max(w => w.LateMs):0} ms late, "
                + $"publish latency p50 {Harness.Median(Workers.Select(w => w.P50Ms)):0.0} ms, worst p99 {Workers.Max(w => w.P99Ms):0} ms, slowest {Workers.Max(w => w.MaxMs):0} ms";
        }

        // ------------------------------------------------------------------ profile

        /// <summary>Where the time of one durable publish goes: Stopwatch breakdown of its steps.</summary>
        public IEnumerable<Row> Profile()
        {
            _log("profile: single publish breakdown");
            var timing = new TimingStorageIO();
            string path = NewPath("store-profile");
            using (FileEventStore.Initialize(path, null, null, out _))
            {
            }

            using var store = FileEventStore.Open(path, new StoreOpenOptions { IO = timing });
            Harness.RunFor(_config.Warmup, () => Publish1(store));
            timing.Reset();
            var total = Harness.RunFor(_config.RepDuration, () => Publish1(store));
            double totalUs = total.MicrosPerEvent;
            double syncUs = timing.SyncSeconds * 1e6 / timing.SyncCalls;

            string lockPath = Path.Combine(_root, "profile.lock");
            var lockCost = Harness.RunFor(_config.RepDuration / 4, () =>
            {
                using (StoreLock.Acquire(lockPath, TimeSpan.FromSeconds(5)))
                {
                }

                return 1;
            });
            string probe = Path.Combine(store.SegmentsDir, "segment-99999999999999999999.jsonl");
            var exists = Harness.RunFor(_config.RepDuration / 4, () => File.Exists(probe) ? 2 : 1);
            string writeOnly = NewPath("profile-write.log");
            using (var fs = new FileStream(writeOnly, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, BufferSize = 0 }))
            {
                var write = Harness.RunCalls(20_000, () =>
                {
                    fs.Write(_rawLine, 0, _rawLine.Length);
                    return 1;
                });
                var prepare = Harness.RunFor(_config.RepDuration / 4, () =>
                {
                    // What the publish path does outside the lock, approximated by the public serializer entry points.
                    EventSerializer.ValidateType(_draft.Type);
                    EventSerializer.ValidateSource(_draft.Source);
                    EventSerializer.ValidateCorrelationId(_draft.CorrelationId);
                    return 1;
                });
                double rest = totalUs - syncUs - lockCost.MicrosPerEvent - exists.MicrosPerEvent - write.MicrosPerEvent;
                yield return new Row
                {
                    Id = "P",
                    Name = "single publish breakdown",
                    Unit = "us/publish",
                    Value = totalUs,
                    Note = $"fsync {syncUs:0.0} us ({timing.SyncCalls / (double)total.Events:0.00} per publish); lock acquire+release {lockCost.MicrosPerEvent:0.0} us; "
                           + $"File.Exists probe {exists.MicrosPerEvent:0.0} us; write(2) {write.MicrosPerEvent:0.0} us; type/source/correlation checks {prepare.MicrosPerEvent:0.00} us; "
                           + $"rest (serialize, fstat, prefix, CRC, record objects) {rest:0.0} us",
                    Samples = new[] { totalUs, syncUs, lockCost.MicrosPerEvent, exists.MicrosPerEvent, write.MicrosPerEvent, rest },
                };
            }
        }

        /// <summary>The real file system, timing each fsync.</summary>
        private sealed class TimingStorageIO : IStorageIO
        {
            private readonly IStorageIO _inner = OsStorageIO.Instance;
            private long _ticks;

            public long SyncCalls { get; private set; }

            public double SyncSeconds => _ticks / (double)Stopwatch.Frequency;

            public void Reset()
            {
                _ticks = 0;
                SyncCalls = 0;
            }

            public Stream OpenForWrite(string path, bool createNew) => _inner.OpenForWrite(path, createNew);

            public void Sync(Stream stream)
            {
                long start = Stopwatch.GetTimestamp();
                _inner.Sync(stream); // the store's own fsync, only timed here
                _ticks += Stopwatch.GetTimestamp() - start;
                SyncCalls++;
            }

            public void SetLength(Stream stream, long length) => _inner.SetLength(stream, length);

            public void Move(string source, string destination) => _inner.Move(source, destination);

            public void SyncDirectory(string directory) => _inner.SyncDirectory(directory);

            public void CreateDirectory(string directory) => _inner.CreateDirectory(directory);
        }

        internal static void DeleteQuietly(string path)
        {
            try
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
                else if (File.Exists(path))
                {
                    File.Delete(path);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
