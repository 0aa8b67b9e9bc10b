"""The report's SQL ranking on PostgreSQL (the unit tests run it on SQLite): the same
garments, in the same order, with the same statuses, page by page."""

from cutout import db
from tests.unit import test_report


def test_the_ranking_on_postgresql(empty_db):
    db.upgrade(empty_db)
    url = test_report.fill(empty_db)
    test_report.test_ranked_worst_first_with_reasons(url)
    test_report.test_pages_join_up_to_the_whole_report_and_the_sql_ranking_agrees_with_the_words(url)
    test_report.test_reviews_settle_views_and_a_manual_cut_keeps_the_garment_with_a_person(url)
    test_report.test_views_that_disagree_on_the_garments_height_keep_it_with_a_person(url)
    test_report.test_views_that_disagree_on_the_garments_size_keep_it_with_a_person(url)
