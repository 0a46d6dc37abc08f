using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;

namespace BmadGuard.Bench
{
    /// <summary>
    /// One timed run: how many events (or operations) in how many seconds of wall time, plus the process's
    /// CPU time (all threads, GC included) and the bytes this thread allocated. On a machine shared with other
    /// users wall time swings with their load; CPU time per event and bytes per event barely do.
    /// </summary>
    internal readonly record struct Sample(long Events, double Seconds, double CpuSeconds = double.NaN, long AllocatedBytes = 0)
    {
        public double Rate => Events / Seconds;

        public double MicrosPerEvent => Seconds * 1e6 / Events;

        public double CpuMicrosPerEvent => CpuSeconds * 1e6 / Events;

        public double BytesPerEvent => AllocatedBytes / (double)Events;
    }

    /// <summary>
    /// The measuring harness. Nothing here asserts on time: every figure the bench reports is compared with a
    /// baseline measured in the same process run, with the two measurements interleaved (A B, B A, A B, …) so a
    /// neighbour's burst of load on the shared machine hits both sides alike, and the median of the per-pair
    /// ratios is reported.
    /// </summary>
    internal static class Harness
    {
        /// <summary>Calls <paramref name="op"/> until <paramref name="duration"/> has passed; op returns the events it did.</summary>
        public static Sample RunFor(TimeSpan duration, Func<int> op)
        {
            long events = 0;
            var start = Probe.Take();
            var clock = Stopwatch.StartNew();
            do
            {
                events += op();
            }
            while (clock.Elapsed < duration);

            double seconds = clock.Elapsed.TotalSeconds;
            return start.Finish(events, seconds);
        }

        /// <summary>Calls <paramref name="op"/> exactly <paramref name="calls"/> times.</summary>
        public static Sample RunCalls(int calls, Func<int> op)
        {
            long events = 0;
            var start = Probe.Take();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++)
            {
                events += op();
            }

            double seconds = clock.Elapsed.TotalSeconds;
            return start.Finish(events, seconds);
        }

        /// <summary>CPU time and allocation counters at the start of a sample.</summary>
        private readonly struct Probe
        {
            private readonly TimeSpan _cpu;
            private readonly long _allocated;

            private Probe(TimeSpan cpu, long allocated)
            {
                _cpu = cpu;
                _allocated = allocated;
            }

            public static Probe Take() => new Probe(Process.GetCurrentProcess().TotalProcessorTime, GC.GetAllocatedBytesForCurrentThread());

            public Sample Finish(long events, double seconds)
            {
                long allocated = GC.GetAllocatedBytesForCurrentThread() - _allocated;
                double cpu = (Process.GetCurrentProcess().TotalProcessorTime - _cpu).TotalSeconds;
                return new Sample(events, seconds, cpu, allocated);
            }
        }

        /// <summary>
        /// Runs <paramref name="baseline"/> and <paramref name="candidate"/> <paramref name="reps"/> times each,
        /// alternating which goes first.
        /// </summary>
        public static Paired Interleave(int reps, Func<Sample> baseline, Func<Sample> candidate)
        {
            var a = new List<Sample>();
            var b = new List<Sample>();
            for (int i = 0; i < reps; i++)
            {
                if (i % 2 == 0)
                {
                    a.Add(baseline());
                    b.Add(candidate());
                }
                else
                {
                    b.Add(candidate());
                    a.Add(baseline());
                }
            }

            return new Paired(a, b);
        }

        public static double Median(IEnumerable<double> values)
        {
            var v = values.OrderBy(x => x).ToArray();
            if (v.Length == 0)
            {
                return double.NaN;
            }

            return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
        }
    }

    /// <summary>Interleaved baseline (A) and candidate (B) samples.</summary>
    internal sealed class Paired
    {
        public Paired(List<Sample> baseline, List<Sample> candidate)
        {
            Baseline = baseline;
            Candidate = candidate;
        }

        public List<Sample> Baseline { get; }

        public List<Sample> Candidate { get; }

        /// <summary>Candidate rate / baseline rate for each pair (higher is better for the candidate).</summary>
        public double[] RateRatios => Candidate.Zip(Baseline, (b, a) => b.Rate / a.Rate).ToArray();

        /// <summary>Candidate cost per event / baseline cost per event for each pair (lower is better).</summary>
        public double[] CostRatios => Candidate.Zip(Baseline, (b, a) => b.MicrosPerEvent / a.MicrosPerEvent).ToArray();
    }
}
