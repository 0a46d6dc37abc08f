using System;
using System.Management.Automation;
using BmadGuard.Core.Integrity;

namespace BmadGuard.Infrastructure
{
    /// <summary>
    /// Core's <see cref="IProgress{IntegrityProgress}"/> as Write-Progress records. Core reports on the calling
    /// (pipeline) thread, so WriteProgress is legal here; records are written only when the activity, file or
    /// percentage changes, so a large store does not flood the host. <see cref="Complete"/> writes the final
    /// Completed record (call it in a finally, so the bar goes away even after an error or Ctrl+C).
    /// $ProgressPreference is applied by PowerShell itself.
    /// </summary>
    internal sealed class CmdletProgress : IProgress<IntegrityProgress>
    {
        private readonly Cmdlet _cmdlet;
        private readonly int _activityId;
        private readonly string _activity;
        private string? _lastKey;
        private bool _written;

        public CmdletProgress(Cmdlet cmdlet, string activity, int activityId = 1)
        {
            _cmdlet = cmdlet;
            _activity = activity;
            _activityId = activityId;
        }

        public void Report(IntegrityProgress value)
        {
            string key = value.Activity + "|" + value.File + "|" + value.Percent;
            if (key == _lastKey)
            {
                return;
            }

            _lastKey = key;
            string status = string.IsNullOrEmpty(value.File) ? value.Activity : $"{value.Activity}: {value.File}";
            if (string.IsNullOrWhiteSpace(status))
            {
                status = "Working"; // ProgressRecord refuses an empty status
            }

            var record = new ProgressRecord(_activityId, _activity, status)
            {
                PercentComplete = value.BytesTotal > 0 ? value.Percent : -1,
            };
            _cmdlet.WriteProgress(record);
            _written = true;
        }

        public void Complete()
        {
            if (!_written)
            {
                return;
            }

            _cmdlet.WriteProgress(new ProgressRecord(_activityId, _activity, "Done") { RecordType = ProgressRecordType.Completed });
            _written = false;
        }
    }
}
