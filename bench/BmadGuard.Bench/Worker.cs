using System;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Storage;

namespace BmadGuard.Bench
{
    /// <summary>What one publisher process reports on stdout (one JSON line).</summary>
    internal sealed class WorkerResult
    {
        /// <summary>Events acknowledged inside the measured window.</summary>
        public long Events { get; set; }

        /// <summary>Events acknowledged while warming up, before the window.</summary>
        public long Warmup { get; set; }

        /// <summary>Publishes that failed (lock timeout etc.); none is expected.</summary>
        public long Errors { get; set; }

        /// <summary>How late this process reached the common start instant (0 when it was waiting).</summary>
        public double LateMs { get; set; }

        /// <summary>The slowest single publish in the window (lock waits included).</summary>
        public double MaxMs { get; set; }

        /// <summary>Median and 99th percentile of one publish's latency in the window (lock waits included).</summary>
        public double P50Ms { get; set; }

        public double P99Ms { get; set; }
    }

    /// <summary>
    /// Worker mode (scenario 5): the bench binary started again as a publisher process. It opens the store,
    /// warms up, waits for the common start instant, then publishes one event per call (each durable)
    /// until the window closes.
    /// </summary>
    internal static class Worker
    {
        internal static readonly JsonSerializerOptions JsonOptions = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

        public static int Run(string[] args)
        {
            string? store = null;
            long startTicks = 0, durationMs = 0;
            int pad = 100;
            for (int i = 1; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--store": store = args[++i]; break;
                    case "--start-ticks": startTicks = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--duration-ms": durationMs = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--pad": pad = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    default:
                        Console.Error.WriteLine($"worker: unknown option {args[i]}");
                        return 2;
                }
            }

            if (store == null || startTicks == 0 || durationMs <= 0)
            {
                Console.Error.WriteLine("worker: --store, --start-ticks and --duration-ms are required");
                return 2;
            }

            var draft = Workload.Draft(pad);
            var result = new WorkerResult();
            using (var s = FileEventStore.Open(store))
            {
                for (int i = 0; i < 20; i++)
                {
                    s.Publish(draft);
                    result.Warmup++;
                }

                var start = new DateTime(startTicks, DateTimeKind.Utc);
                var wait = start - DateTime.UtcNow;
                if (wait > TimeSpan.Zero)
                {
                    Thread.Sleep(wait);
                }
                else
                {
                    result.LateMs = -wait.TotalMilliseconds;
                }

                var end = start + TimeSpan.FromMilliseconds(durationMs);
                var latencies = new System.Collections.Generic.List<long>();
                while (DateTime.UtcNow < end)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    try
                    {
                        s.Publish(draft);
                        result.Events++;
                    }
                    catch (BmadGuardException ex)
                    {
                        result.Errors++;
                        Console.Error.WriteLine($"worker: {ex.Code}: {ex.Message}");
                    }

                    latencies.Add(Stopwatch.GetTimestamp() - t0);
                }

                latencies.Sort();
                double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
                if (latencies.Count > 0)
                {
                    result.MaxMs = Ms(latencies[latencies.Count - 1]);
                    result.P50Ms = Ms(latencies[latencies.Count / 2]);
                    result.P99Ms = Ms(latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))]);
                }
            }

            Console.WriteLine(JsonSerializer.Serialize(result, JsonOptions));
            return 0;
        }
    }
}
