using System;
using System.Collections.Generic;
using System.Globalization;

namespace BmadGuard.Bench
{
    /// <summary>Command-line options and the sizes they imply.</summary>
    internal sealed class BenchConfig
    {
        public bool Quick { get; private set; }

        /// <summary>Where the temporary stores go (default: next to the default store, i.e. the same volume).</summary>
        public string? Dir { get; private set; }

        public string? Out { get; private set; }

        public bool Keep { get; private set; }

        /// <summary>Only run these scenarios (1-5); empty = all.</summary>
        public HashSet<int> Only { get; } = new HashSet<int>();

        /// <summary>Add the Stopwatch breakdown of a single publish.</summary>
        public bool Profile { get; private set; }

        /// <summary>Repetitions (interleaved baseline/candidate pairs) of scenarios 3 and 4.</summary>
        public int Reps => Quick ? 3 : 11;

        /// <summary>Scenarios 1-2: many short interleaved slices, so fsync latency swings (other users of the disk) hit both sides.</summary>
        public int SlicePairs => Quick ? 5 : 21;

        public TimeSpan SliceDuration => Quick ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromSeconds(1);

        /// <summary>One raw-loop baseline measurement around the concurrent runs (scenario 5) and in the profile.</summary>
        public TimeSpan RepDuration => Quick ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(2);

        public TimeSpan Warmup => Quick ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromSeconds(1);

        /// <summary>Scenario 3: the big store's size.</summary>
        public int LargeStoreEvents => Quick ? 100_000 : 1_000_000;

        public int SmallStoreEvents => 1_000;

        /// <summary>
        /// Scenario 3: interleaved window pairs. A window is only ~10k events (tens of ms when the disk is quick),
        /// so many pairs are needed for a stable median; each adds a window's events to the big store.
        /// </summary>
        public int CostReps => Quick ? 5 : 21;

        /// <summary>Scenario 3: the measured window is this many Publish calls of <see cref="WindowBatch"/> events.</summary>
        public int WindowCalls => 10;

        public int WindowBatch => 1_000;

        /// <summary>Scenario 4: events per repetition for each batch size.</summary>
        public int BatchEventsPerRep => Quick ? 20_000 : 100_000;

        public int[] BatchSizes => new[] { 1_000, 10_000 };

        public int Publishers => 4;

        public TimeSpan ConcurrentDuration => Quick ? TimeSpan.FromSeconds(3) : TimeSpan.FromSeconds(8);

        public int ConcurrentReps => Quick ? 1 : 3;

        public static BenchConfig Parse(string[] args)
        {
            var c = new BenchConfig();
            for (int i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--quick":
                        c.Quick = true;
                        break;
                    case "--dir":
                        c.Dir = Next(args, ref i);
                        break;
                    case "--out":
                        c.Out = Next(args, ref i);
                        break;
                    case "--keep":
                        c.Keep = true;
                        break;
                    case "--profile":
                        c.Profile = true;
                        break;
                    case "--only":
                        foreach (string part in Next(args, ref i).Split(','))
                        {
                            c.Only.Add(int.Parse(part, CultureInfo.InvariantCulture));
                        }

                        break;
                    case "-h":
                    case "--help":
                        throw new UsageException(null);
                    default:
                        throw new UsageException($"unknown option '{args[i]}'");
                }
            }

            return c;
        }

        public bool Runs(int scenario) => Only.Count == 0 || Only.Contains(scenario);

        private static string Next(string[] args, ref int i)
        {
            if (i + 1 >= args.Length)
            {
                throw new UsageException($"{args[i]} needs a value");
            }

            return args[++i];
        }

        public const string Usage =
            "usage: dotnet run -c Release --project bench/BmadGuard.Bench -- [--quick] [--dir DIR] [--out FILE] [--only 1,2,...] [--profile] [--keep]\n" +
            "  --quick     short run (3 reps, 100k instead of 1M events in scenario 3)\n" +
            "  --dir DIR   where to create the temporary stores (default: next to the default store, same volume)\n" +
            "  --out FILE  JSON results (default: bench/results/latest.json)\n" +
            "  --only L    run only these scenarios (1 is always run when 2 or 5 is)\n" +
            "  --profile   add a Stopwatch breakdown of one durable publish\n" +
            "  --keep      keep the temporary directory";
    }

    internal sealed class UsageException : Exception
    {
        public UsageException(string? message)
            : base(message ?? "")
        {
        }
    }
}
