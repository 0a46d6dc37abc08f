using System;
using System.Diagnostics;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core.Backup;

namespace BmadGuard.Infrastructure
{
    /// <summary>
    /// Turns Core's backup/restore progress callbacks into Write-Progress records (which respect
    /// $ProgressPreference). Records are written only from the pipeline thread (the thread that made this
    /// object; Core reports synchronously from the calling thread) and at most every 200 ms; <see cref="Complete"/>
    /// writes the final Completed record.
    /// </summary>
    internal sealed class BackupProgressWriter : IProgress<BackupProgress>
    {
        private static readonly TimeSpan Every = TimeSpan.FromMilliseconds(200);
        private readonly Cmdlet _cmdlet;
        private readonly int _activityId;
        private readonly string _activity;
        private readonly int _thread = Thread.CurrentThread.ManagedThreadId;
        private readonly Stopwatch _since = Stopwatch.StartNew();
        private bool _written;

        public BackupProgressWriter(Cmdlet cmdlet, int activityId, string activity)
        {
            _cmdlet = cmdlet;
            _activityId = activityId;
            _activity = activity;
        }

        public void Report(BackupProgress value)
        {
            if (Thread.CurrentThread.ManagedThreadId != _thread || (_written && _since.Elapsed < Every))
            {
                return;
            }

            _since.Restart();
            _written = true;
            var record = new ProgressRecord(_activityId, _activity, string.IsNullOrEmpty(value.Activity) ? _activity : value.Activity)
            {
                PercentComplete = value.BytesTotal > 0 ? value.PercentComplete : -1,
                CurrentOperation = value.File ?? string.Empty,
            };
            _cmdlet.WriteProgress(record);
        }

        /// <summary>The final record (RecordType Completed) so the progress bar goes away.</summary>
        public void Complete()
        {
            if (Thread.CurrentThread.ManagedThreadId != _thread)
            {
                return;
            }

            _cmdlet.WriteProgress(new ProgressRecord(_activityId, _activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }
}
