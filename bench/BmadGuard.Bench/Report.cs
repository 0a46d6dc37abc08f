using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace BmadGuard.Bench
{
    /// <summary>One line of the results table (and of latest.json).</summary>
    internal sealed class Row
    {
        /// <summary>Stable id for scripts reading latest.json, e.g. "2.single-publish".</summary>
        public string Id { get; set; } = "";

        public string Name { get; set; } = "";

        /// <summary>The candidate's median, in <see cref="Unit"/>.</summary>
        public double Value { get; set; }

        public string Unit { get; set; } = "";

        public string? Baseline { get; set; }

        /// <summary>The baseline's median, in <see cref="Unit"/>.</summary>
        public double? BaselineValue { get; set; }

        /// <summary>Median of the per-pair ratios (candidate / baseline, in the row's unit).</summary>
        public double? Ratio { get; set; }

        public double? RatioMin { get; set; }

        public double? RatioMax { get; set; }

        /// <summary>The target as text, e.g. "ratio >= 0.8".</summary>
        public string? Target { get; set; }

        /// <summary>Whether the target was met (null for rows without a target).</summary>
        public bool? Met { get; set; }

        public string? Note { get; set; }

        /// <summary>Median process CPU time (all threads, GC included) per event of the candidate, in microseconds.</summary>
        public double? CpuMicrosPerEvent { get; set; }

        public double? BaselineCpuMicrosPerEvent { get; set; }

        /// <summary>Median bytes allocated per event by the candidate (the publishing thread).</summary>
        public double? AllocatedBytesPerEvent { get; set; }

        public double[] Samples { get; set; } = Array.Empty<double>();

        public double[]? BaselineSamples { get; set; }

        public double[]? Ratios { get; set; }
    }

    internal sealed class RunInfo
    {
        public string Started { get; set; } = "";

        public double Seconds { get; set; }

        public bool Quick { get; set; }

        public string Directory { get; set; } = "";

        public string? FileSystem { get; set; }

        public int ProcessorCount { get; set; } = Environment.ProcessorCount;

        public string Os { get; set; } = System.Runtime.InteropServices.RuntimeInformation.OSDescription;

        public string Runtime { get; set; } = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;

        public string? LoadAverageBefore { get; set; }

        public string? LoadAverageAfter { get; set; }

        public int RecordBytes { get; set; }

        public List<Row> Rows { get; set; } = new List<Row>();
    }

    internal static class Report
    {
        public static void PrintTable(RunInfo run)
        {
            bool redirected = Console.IsOutputRedirected;
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(Console.Out),
                Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
                ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            });
            if (redirected)
            {
                console.Profile.Width = 200; // a file or pipe has no width; keep rows on one line where possible
            }

            var table = new Table().Border(TableBorder.Rounded)
                .Title($"BmadGuard bench{(run.Quick ? " (--quick)" : "")}: {Markup.Escape(run.Directory)}{(run.FileSystem != null ? " (" + Markup.Escape(run.FileSystem) + ")" : "")}")
                .AddColumn("Row")
                .AddColumn(new TableColumn("Measured (median)").RightAligned())
                .AddColumn("Baseline (same run)")
                .AddColumn(new TableColumn("Ratio (min-max)").RightAligned())
                .AddColumn(new TableColumn("CPU us/event (base)").RightAligned())
                .AddColumn("Target")
                .AddColumn("Met");

            foreach (var r in run.Rows)
            {
                string ratio = r.Ratio.HasValue
                    ? $"{r.Ratio.Value:0.000}" + (r.RatioMin.HasValue ? $" ({r.RatioMin:0.00}-{r.RatioMax:0.00})" : "")
                    : "";
                string baseline = r.Baseline == null ? "" : r.Baseline + (r.BaselineValue.HasValue ? $": {Format(r.BaselineValue.Value)} {r.Unit}" : "");
                string met = r.Met == null ? "" : r.Met.Value ? "[green]yes[/]" : "[red]NO[/]";
                table.AddRow(
                    new Markup(Markup.Escape($"{r.Id} {r.Name}") + (r.Note != null ? "\n[grey]" + Markup.Escape(r.Note) + "[/]" : "")),
                    new Text($"{Format(r.Value)} {r.Unit}"),
                    new Text(baseline),
                    new Text(ratio),
                    new Text(r.CpuMicrosPerEvent.HasValue ? $"{r.CpuMicrosPerEvent:0.00}" + (r.BaselineCpuMicrosPerEvent.HasValue ? $" ({r.BaselineCpuMicrosPerEvent:0.00})" : "") : ""),
                    new Text(r.Target ?? ""),
                    new Markup(met));
            }

            console.Write(table);
            console.WriteLine($"load average before: {run.LoadAverageBefore ?? "n/a"}; after: {run.LoadAverageAfter ?? "n/a"}; {run.ProcessorCount} cores; {run.Seconds:0} s");
        }

        public static string Format(double v)
        {
            if (double.IsNaN(v))
            {
                return "n/a";
            }

            return Math.Abs(v) >= 100 ? v.ToString("#,0", CultureInfo.InvariantCulture) : v.ToString("0.00", CultureInfo.InvariantCulture);
        }

        public static void WriteJson(RunInfo run, string path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            var options = new JsonSerializerOptions
            {
                WriteIndented = true,
                PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
                DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
                NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            };
            File.WriteAllText(path, JsonSerializer.Serialize(run, options) + "\n");
        }

        /// <summary>Adds the CPU-time and allocation medians of a paired measurement to a row.</summary>
        public static Row WithCost(this Row row, Paired pairs)
        {
            row.CpuMicrosPerEvent = Harness.Median(pairs.Candidate.Select(s => s.CpuMicrosPerEvent));
            row.BaselineCpuMicrosPerEvent = Harness.Median(pairs.Baseline.Select(s => s.CpuMicrosPerEvent));
            row.AllocatedBytesPerEvent = Harness.Median(pairs.Candidate.Select(s => s.BytesPerEvent));
            return row;
        }

        public static Row Ratio(string id, string name, string unit, string baselineName, double[] candidate, double[] baseline, double[] ratios,
            string? target = null, Func<double, bool>? meets = null, string? note = null)
        {
            double ratio = Harness.Median(ratios);
            return new Row
            {
                Id = id,
                Name = name,
                Unit = unit,
                Value = Harness.Median(candidate),
                Baseline = baselineName,
                BaselineValue = Harness.Median(baseline),
                Ratio = ratio,
                RatioMin = ratios.Min(),
                RatioMax = ratios.Max(),
                Target = target,
                Met = meets == null ? null : meets(ratio),
                Note = note,
                Samples = candidate,
                BaselineSamples = baseline,
                Ratios = ratios,
            };
        }
    }
}
