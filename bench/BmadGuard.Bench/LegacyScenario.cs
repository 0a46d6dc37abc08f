using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Legacy;

namespace BmadGuard.Bench
{
    /// <summary>
    /// Scenario 6: verify --file and repair --file on a 100k-event (~45 MB) legacy bus file (issue 9 invariant 10: linear,
    /// seconds). The baseline is one plain JsonDocument.Parse of the same bytes, measured in the same run, so the ratio
    /// says how many parses a check costs whatever the machine's load.
    /// </summary>
    internal static class LegacyScenario
    {
        public static IEnumerable<Row> Run(string root, bool quick, Action<string> log)
        {
            int events = 100_000;
            string dir = Path.Combine(root, "06-legacy");
            Directory.CreateDirectory(dir);
            string file = Path.Combine(dir, "shared_context.json");
            Write(file, events);
            byte[] bytes = File.ReadAllBytes(file);
            log($"legacy bus file: {events} events, {bytes.Length / 1e6:0.0} MB");
            int reps = quick ? 1 : 3;
            var parse = new List<double>();
            var verify = new List<double>();
            var repair = new List<double>();
            for (int i = 0; i < reps; i++)
            {
                var clock = Stopwatch.StartNew();
                using (JsonDocument.Parse(bytes))
                {
                }

                parse.Add(clock.Elapsed.TotalSeconds);
                clock.Restart();
                var report = JsonFileVerifier.Verify(file);
                verify.Add(clock.Elapsed.TotalSeconds);
                if (!report.Healthy || report.RecordsChecked != events)
                {
                    throw new InvalidOperationException("verify did not check the whole file");
                }

                // repair of the same file cut inside its last event: the salvage path, every other event kept.
                string cut = Path.Combine(dir, "cut-" + i + ".json");
                File.WriteAllBytes(cut, bytes.AsSpan(0, bytes.Length - 40).ToArray());
                clock.Restart();
                var result = LegacyBusFile.Repair(cut);
                repair.Add(clock.Elapsed.TotalSeconds);
                if (result.RecoveredEvents != events - 1)
                {
                    throw new InvalidOperationException("repair did not keep every complete event");
                }

                log($"legacy rep {i + 1}/{reps}: parse {parse[^1]:0.00} s, verify {verify[^1]:0.00} s, repair {repair[^1]:0.00} s");
            }

            double p = Median(parse);
            yield return Make("6.verify-file", "verify --file, 100k events (~45 MB)", Median(verify), p, verify, parse, bytes.Length);
            yield return Make("6.repair-file", "repair --file, 100k events cut in the last one", Median(repair), p, repair, parse, bytes.Length);
        }

        private static Row Make(string id, string name, double value, double baseline, List<double> samples, List<double> baselines, long size) => new Row
        {
            Id = id,
            Name = name,
            Value = value,
            Unit = "s",
            Baseline = "one JsonDocument.Parse of the file",
            BaselineValue = baseline,
            Ratio = baseline > 0 ? value / baseline : (double?)null,
            Target = "seconds, linear (was quadratic: 20k events took 101 s)",
            Note = $"{size / 1e6:0.0} MB; the ratio is the check's cost in plain parses",
            Samples = samples.ToArray(),
            BaselineSamples = baselines.ToArray(),
        };

        private static double Median(List<double> values)
        {
            var sorted = values.OrderBy(v => v).ToList();
            return sorted[sorted.Count / 2];
        }

        /// <summary>A bus file as Python's json.dump(indent=2) writes it, ~450 bytes per event.</summary>
        internal static void Write(string path, int events)
        {
            using var f = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
            string pad = new string('x', 300);
            f.Write("{\n  \"events\": [\n");
            for (int i = 0; i < events; i++)
            {
                f.Write(i > 0 ? ",\n" : "");
                f.Write($"    {{\n      \"timestamp\": \"2025-07-27T00:{i / 60 % 60:00}:{i % 60:00}.{i % 1000000:000000}\",\n      \"event\": \"story_created\",\n      \"data\": {{\n        \"i\": {i},\n        \"text\": \"{pad}\"\n      }}\n    }}");
            }

            f.Write("\n  ]\n}");
        }
    }
}
