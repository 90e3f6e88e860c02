import Sync from './sync.js';

export default class Backup extends Sync {
  static override summary = 'Alias of sync: bring a connected disk up to date.';
  static override examples = ['<%= config.bin %> backup backup3', '<%= config.bin %> backup --disk /media/backup3'];
}
