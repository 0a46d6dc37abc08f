using System.Linq;
using BmadGuard.Core.Integrity;

namespace BmadGuard
{
    /// <summary>One problem (or note) Test-BmadIntegrity found, with where it is and what to do about it.</summary>
    public sealed class BmadIntegrityFinding
    {
        private BmadIntegrityFinding(string severity, string code, string? file, long? offset, long? length, int? line, int? column, string message)
        {
            Severity = severity;
            Code = code;
            File = file;
            Offset = offset;
            Length = length;
            Line = line;
            Column = column;
            Message = message;
        }

        /// <summary>Error (damage), Warning (look at it) or Info.</summary>
        public string Severity { get; }

        /// <summary>A stable code, e.g. RecordDamaged, TornTail, InvalidJson, SchemaViolation (see about_BmadGuard).</summary>
        public string Code { get; }

        /// <summary>The file the finding is about.</summary>
        public string? File { get; }

        /// <summary>The byte offset in <see cref="File"/> where the problem starts, when known.</summary>
        public long? Offset { get; }

        /// <summary>How many bytes are affected, when known.</summary>
        public long? Length { get; }

        /// <summary>The line (from 1) of a JSON file finding, when known.</summary>
        public int? Line { get; }

        /// <summary>The column (from 1) of a JSON file finding, when known.</summary>
        public int? Column { get; }

        /// <summary>What is wrong, in words a person can act on.</summary>
        public string Message { get; }

        public override string ToString() => $"{Severity} {Code}: {Message}";

        internal static BmadIntegrityFinding FromFinding(IntegrityFinding f)
            => new BmadIntegrityFinding(f.Severity.ToString(), f.Code, f.File, f.Offset, f.Length, f.Line, f.Column, f.Message);
    }

    /// <summary>What Test-BmadIntegrity checked and found, for a store or a JSON file.</summary>
    public sealed class BmadIntegrityReport
    {
        private BmadIntegrityReport(string target, string kind, bool healthy, long files, long records, long bytes, long? lastValidSeq, BmadIntegrityFinding[] findings)
        {
            Target = target;
            Kind = kind;
            Healthy = healthy;
            FilesChecked = files;
            RecordsChecked = records;
            BytesChecked = bytes;
            LastValidSeq = lastValidSeq;
            Findings = findings;
            ErrorCount = findings.Count(f => f.Severity == nameof(FindingSeverity.Error));
            WarningCount = findings.Count(f => f.Severity == nameof(FindingSeverity.Warning));
        }

        /// <summary>The store directory or file that was checked (full path).</summary>
        public string Target { get; }

        /// <summary>store or file.</summary>
        public string Kind { get; }

        /// <summary>True when no finding is an error.</summary>
        public bool Healthy { get; }

        /// <summary>How many files were read.</summary>
        public long FilesChecked { get; }

        /// <summary>How many records (store) or events (legacy file) were checked.</summary>
        public long RecordsChecked { get; }

        /// <summary>How many bytes were read.</summary>
        public long BytesChecked { get; }

        /// <summary>The last seq up to which the store's log is intact (stores only).</summary>
        public long? LastValidSeq { get; }

        /// <summary>How many findings are errors.</summary>
        public int ErrorCount { get; }

        /// <summary>How many findings are warnings.</summary>
        public int WarningCount { get; }

        /// <summary>Everything found, in file order.</summary>
        public BmadIntegrityFinding[] Findings { get; }

        public override string ToString() => $"{Kind} {Target}: {(Healthy ? "healthy" : "damaged")} ({ErrorCount} errors, {WarningCount} warnings)";

        internal static BmadIntegrityReport FromReport(IntegrityReport r)
            => new BmadIntegrityReport(r.Target, r.Kind, r.Healthy, r.FilesChecked, r.RecordsChecked, r.BytesChecked, r.LastValidSeq,
                r.Findings.Select(BmadIntegrityFinding.FromFinding).ToArray());
    }
}
