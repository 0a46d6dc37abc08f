using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace BmadGuard.Core.Integrity
{
    /// <summary>How bad a finding is. Only <see cref="Error"/> makes a report unhealthy.</summary>
    public enum FindingSeverity
    {
        /// <summary>Worth knowing; nothing to do (e.g. a file written before checksums existed).</summary>
        Info,
        /// <summary>Not damage, but a person should look (quarantined bytes, a torn tail the next writer cuts, leftover temp files).</summary>
        Warning,
        /// <summary>Damage: data is wrong, missing or unreadable.</summary>
        Error,
    }

    /// <summary>One thing Test-BmadIntegrity found: where it is and what to do about it.</summary>
    public sealed class IntegrityFinding
    {
        public IntegrityFinding(FindingSeverity severity, string code, string? file, string message, long? offset = null, long? length = null, int? line = null, int? column = null)
        {
            Severity = severity;
            Code = code;
            File = file;
            Message = message;
            Offset = offset;
            Length = length;
            Line = line;
            Column = column;
        }

        public FindingSeverity Severity { get; }

        /// <summary>A stable PascalCase code (see <see cref="FindingCodes"/>); scripts and tests match on it.</summary>
        public string Code { get; }

        /// <summary>The file the finding is about (full path), when there is one.</summary>
        public string? File { get; }

        /// <summary>Byte offset in <see cref="File"/> where the problem starts.</summary>
        public long? Offset { get; }

        /// <summary>How many bytes the problem spans, when known.</summary>
        public long? Length { get; }

        /// <summary>1-based line (JSON files).</summary>
        public int? Line { get; }

        /// <summary>1-based column in characters (JSON files).</summary>
        public int? Column { get; }

        /// <summary>What is wrong and what a person can do about it.</summary>
        public string Message { get; }

        public override string ToString()
        {
            string where = File ?? "";
            if (Line.HasValue)
            {
                where += $":{Line}:{Column}";
            }
            else if (Offset.HasValue)
            {
                where += $"@{Offset}";
            }

            return $"{Severity} {Code} {where}: {Message}";
        }
    }

    /// <summary>
    /// The result of Test-BmadIntegrity: healthy or not, what was checked, and every finding.
    /// <see cref="Healthy"/> is false when any finding is an <see cref="FindingSeverity.Error"/>.
    /// </summary>
    public sealed class IntegrityReport
    {
        internal IntegrityReport(string target, string kind, long files, long records, long bytes, IReadOnlyList<IntegrityFinding> findings, long? lastValidSeq)
        {
            Target = target;
            Kind = kind;
            FilesChecked = files;
            RecordsChecked = records;
            BytesChecked = bytes;
            Findings = findings;
            LastValidSeq = lastValidSeq;
            bool healthy = true;
            foreach (var f in findings)
            {
                healthy &= f.Severity != FindingSeverity.Error;
            }

            Healthy = healthy;
        }

        /// <summary>The store directory or JSON file that was checked.</summary>
        public string Target { get; }

        /// <summary><c>store</c> or <c>file</c>.</summary>
        public string Kind { get; }

        public bool Healthy { get; }

        public long FilesChecked { get; }

        /// <summary>Store: records whose checksum was verified. JSON file: events (or top-level values) checked.</summary>
        public long RecordsChecked { get; }

        public long BytesChecked { get; }

        /// <summary>Store: the last seq of the unbroken run of valid records from seq 1 (null for a file, or when seq 1 is missing).</summary>
        public long? LastValidSeq { get; }

        public IReadOnlyList<IntegrityFinding> Findings { get; }

        public int ErrorCount => Count(FindingSeverity.Error);

        public int WarningCount => Count(FindingSeverity.Warning);

        private int Count(FindingSeverity severity)
        {
            int n = 0;
            foreach (var f in Findings)
            {
                n += f.Severity == severity ? 1 : 0;
            }

            return n;
        }

        /// <summary>Writes the report as one JSON object (the CLI's output; field names are a contract).</summary>
        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("target", Target);
            w.WriteString("kind", Kind);
            w.WriteBoolean("healthy", Healthy);
            w.WriteStartObject("checked");
            w.WriteNumber("files", FilesChecked);
            w.WriteNumber("records", RecordsChecked);
            w.WriteNumber("bytes", BytesChecked);
            w.WriteEndObject();
            if (LastValidSeq.HasValue)
            {
                w.WriteNumber("lastValidSeq", LastValidSeq.Value);
            }

            w.WriteNumber("errors", ErrorCount);
            w.WriteNumber("warnings", WarningCount);
            w.WriteStartArray("findings");
            foreach (var f in Findings)
            {
                WriteFinding(w, f);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        internal static void WriteFinding(Utf8JsonWriter w, IntegrityFinding f)
        {
            w.WriteStartObject();
            w.WriteString("severity", f.Severity.ToString().ToLowerInvariant());
            w.WriteString("code", f.Code);
            if (f.File != null)
            {
                w.WriteString("file", f.File);
            }

            if (f.Offset.HasValue)
            {
                w.WriteNumber("offset", f.Offset.Value);
            }

            if (f.Length.HasValue)
            {
                w.WriteNumber("length", f.Length.Value);
            }

            if (f.Line.HasValue)
            {
                w.WriteNumber("line", f.Line.Value);
            }

            if (f.Column.HasValue)
            {
                w.WriteNumber("column", f.Column.Value);
            }

            w.WriteString("message", f.Message);
            w.WriteEndObject();
        }
    }

    /// <summary>Collects findings and counters while a check runs; extension checks (<see cref="IIntegrityCheck"/>) write into it.</summary>
    public sealed class IntegrityReportBuilder
    {
        private readonly List<IntegrityFinding> _findings = new List<IntegrityFinding>();

        public IntegrityReportBuilder(string target, string kind)
        {
            Target = target;
            Kind = kind;
        }

        public string Target { get; }

        public string Kind { get; }

        public long Files { get; set; }

        public long Records { get; set; }

        public long Bytes { get; set; }

        public long? LastValidSeq { get; set; }

        public IReadOnlyList<IntegrityFinding> Findings => _findings;

        public void Add(IntegrityFinding finding) => _findings.Add(finding);

        public void Error(string code, string? file, string message, long? offset = null, long? length = null, int? line = null, int? column = null)
            => _findings.Add(new IntegrityFinding(FindingSeverity.Error, code, file, message, offset, length, line, column));

        public void Warning(string code, string? file, string message, long? offset = null, long? length = null, int? line = null, int? column = null)
            => _findings.Add(new IntegrityFinding(FindingSeverity.Warning, code, file, message, offset, length, line, column));

        public void Info(string code, string? file, string message, long? offset = null, long? length = null, int? line = null, int? column = null)
            => _findings.Add(new IntegrityFinding(FindingSeverity.Info, code, file, message, offset, length, line, column));

        public IntegrityReport Build() => new IntegrityReport(Target, Kind, Files, Records, Bytes, _findings.ToArray(), LastValidSeq);
    }

    /// <summary>Where a long check is (for WriteProgress).</summary>
    public sealed class IntegrityProgress
    {
        public IntegrityProgress(string activity, string? file, long bytesDone, long bytesTotal)
        {
            Activity = activity;
            File = file;
            BytesDone = bytesDone;
            BytesTotal = bytesTotal;
        }

        public string Activity { get; }
        public string? File { get; }
        public long BytesDone { get; }
        public long BytesTotal { get; }

        /// <summary>0 to 100.</summary>
        public int Percent => BytesTotal <= 0 ? 100 : (int)Math.Min(100, BytesDone * 100 / BytesTotal);
    }

    /// <summary>
    /// An extra check run by the store verify after the built-in ones (the backup feature plugs in
    /// "each backup file against its manifest" here). Add it to <see cref="StoreVerifyOptions.Checks"/>
    /// or once for the process to <see cref="IntegrityChecks.Registered"/>.
    /// </summary>
    public interface IIntegrityCheck
    {
        /// <summary>A short name, shown in progress ("backups").</summary>
        string Name { get; }

        /// <summary>Checks what it owns under <paramref name="storeRoot"/>, adding findings and counters to <paramref name="report"/>.</summary>
        void Check(string storeRoot, IntegrityReportBuilder report, IProgress<IntegrityProgress>? progress, System.Threading.CancellationToken cancellationToken);
    }

    /// <summary>Process-wide extra checks every store verify runs (unless its options say otherwise).</summary>
    public static class IntegrityChecks
    {
        private static readonly object Gate = new object();
        // The backup check is part of every store verify by default (issue 3: "and the backups (each file against
        // its manifest hash)"); a caller that wants the store alone sets StoreVerifyOptions.IncludeRegisteredChecks = false.
        private static IIntegrityCheck[] _registered = { new BmadGuard.Core.Integration.BackupIntegrityCheck() };

        public static IReadOnlyList<IIntegrityCheck> Registered
        {
            get
            {
                lock (Gate)
                {
                    return _registered;
                }
            }
        }

        /// <summary>Adds a check (once per type).</summary>
        public static void Register(IIntegrityCheck check)
        {
            lock (Gate)
            {
                foreach (var c in _registered)
                {
                    if (c.GetType() == check.GetType())
                    {
                        return;
                    }
                }

                var list = new List<IIntegrityCheck>(_registered) { check };
                _registered = list.ToArray();
            }
        }
    }

    /// <summary>Stable finding codes. Adding one is fine; renaming one breaks users.</summary>
    public static class FindingCodes
    {
        // store
        public const string SettingsMissing = "SettingsMissing";
        public const string SettingsDamaged = "SettingsDamaged";
        public const string SettingsUnchecked = "SettingsUnchecked";
        public const string SegmentsMissing = "SegmentsMissing";
        public const string SegmentHeaderDamaged = "SegmentHeaderDamaged";
        public const string SegmentNameMismatch = "SegmentNameMismatch";
        public const string SegmentMisplaced = "SegmentMisplaced";
        public const string RecordDamaged = "RecordDamaged";
        public const string SeqGap = "SeqGap";
        public const string SeqOutOfOrder = "SeqOutOfOrder";
        public const string SegmentIncomplete = "SegmentIncomplete";
        public const string TornTail = "TornTail";
        public const string AppendInFlight = "AppendInFlight";
        public const string ConsumerDamaged = "ConsumerDamaged";
        public const string ConsumerAheadOfLog = "ConsumerAheadOfLog";
        public const string ConsumerUnchecked = "ConsumerUnchecked";
        public const string QuarantinePresent = "QuarantinePresent";
        public const string TempFileLeftOver = "TempFileLeftOver";
        public const string SetAsideEvents = "SetAsideEvents";
        public const string UnknownFile = "UnknownFile";
        public const string UnreadableFile = "UnreadableFile";
        public const string CheckFailed = "CheckFailed";

        // JSON files
        public const string InvalidUtf8 = "InvalidUtf8";
        public const string Utf8Bom = "Utf8Bom";
        public const string InvalidJson = "InvalidJson";
        public const string DuplicateKey = "DuplicateKey";
        public const string EmptyFile = "EmptyFile";
        public const string LegacyShape = "LegacyShape";
        public const string LegacyEventInvalid = "LegacyEventInvalid";
        public const string LegacyDataNotObject = "LegacyDataNotObject";
        public const string LegacyExtraProperty = "LegacyExtraProperty";
        /// <summary>An element of "events" is a complete object without every field the bus writes (e.g. no "event"): kept, reported.</summary>
        public const string LegacyEventIncomplete = "LegacyEventIncomplete";
        /// <summary>The legacy bus's writers delete or replace its lock file, so the lock excludes no one.</summary>
        public const string LegacyLockFileDeleted = "LegacyLockFileDeleted";
        public const string SchemaViolation = "SchemaViolation";
        public const string ReadWithoutLock = "ReadWithoutLock";

        // store against its backups (BackupIntegrityCheck)
        /// <summary>A verified backup made under the store's current writer epoch holds seqs the store no longer has.</summary>
        public const string StoreBehindBackup = "StoreBehindBackup";
        /// <summary>The store-against-backups comparison could not run (writers' lock busy).</summary>
        public const string BackupCrossCheckSkipped = "BackupCrossCheckSkipped";
    }

    /// <summary>Line and column (1-based; column in characters) of a byte offset in UTF-8 text.</summary>
    public static class TextPosition
    {
        public static (int Line, int Column) FromOffset(ReadOnlySpan<byte> text, long offset)
        {
            int line = 1;
            int column = 1;
            long end = Math.Min(offset, text.Length);
            for (int i = 0; i < end; i++)
            {
                byte b = text[i];
                if (b == (byte)'\n')
                {
                    line++;
                    column = 1;
                }
                else if ((b & 0xC0) != 0x80)
                {
                    column++; // count characters, not continuation bytes
                }
            }

            return (line, column);
        }

        /// <summary>The byte offset of a 0-based line and 0-based byte position in it (as JsonException reports them).</summary>
        public static long ToOffset(ReadOnlySpan<byte> text, long lineNumber, long bytePositionInLine)
        {
            long line = 0;
            int i = 0;
            while (line < lineNumber && i < text.Length)
            {
                if (text[i] == (byte)'\n')
                {
                    line++;
                }

                i++;
            }

            return Math.Min(text.Length, i + bytePositionInLine);
        }
    }
}
